package drv

import (
	"fmt"
	"time"

	"github.com/gridedge/gridedge/hardware/modbus"
	"github.com/gridedge/gridedge/hardware/sensor"
)

// SerialOptions are the line options every Modbus meter channel has; driver
// option structs embed them with `yaml:",inline"`.
type SerialOptions struct {
	// Port is the serial device, e.g. /dev/ttyS0 or /dev/ttyUSB0.
	Port string `yaml:"port"`
	// Baud overrides the driver's default line speed.
	Baud int `yaml:"baud"`
	// TimeoutMS bounds the wait for one response (default 1000).
	TimeoutMS int `yaml:"timeout_ms"`
	// Attempts per request (default 3).
	Attempts int `yaml:"attempts"`
}

// Check records problems with the line options.
func (o SerialOptions) Check(p *Problems) {
	if o.Port == "" {
		p.Option("port", "required: the serial device, e.g. /dev/ttyUSB0")
	}
	if o.Baud < 0 || o.Baud > 4_000_000 {
		p.Option("baud", "must be 1..4000000 (0 = the driver's default), got %d", o.Baud)
	}
	if o.TimeoutMS < 0 {
		p.Option("timeout_ms", "must be >= 0 (0 = the default), got %d", o.TimeoutMS)
	}
	if o.Attempts < 0 || o.Attempts > 10 {
		p.Option("attempts", "must be 0..10 (0 = the default), got %d", o.Attempts)
	}
}

// OpenModbus opens o.Port and returns a Modbus client on it; closing the
// returned port releases it.
// Extra options (a wildcard address) are applied after the line options.
func OpenModbus(env sensor.Env, o SerialOptions, defaultBaud int, extra ...modbus.Option) (*modbus.Client, sensor.SerialPort, error) {
	var p Problems
	o.Check(&p)
	if err := p.Err(); err != nil {
		return nil, nil, err
	}
	if env.OpenSerial == nil {
		return nil, nil, Missing("serial port")
	}
	baud := o.Baud
	if baud == 0 {
		baud = defaultBaud
	}
	timeout := modbus.DefaultResponseTimeout
	if o.TimeoutMS > 0 {
		timeout = time.Duration(o.TimeoutMS) * time.Millisecond
	}
	attempts := modbus.DefaultAttempts
	if o.Attempts > 0 {
		attempts = o.Attempts
	}
	port, err := env.OpenSerial(o.Port, baud)
	if err != nil {
		return nil, nil, fmt.Errorf("open serial port %s at %d baud: %w", o.Port, baud, err)
	}
	opts := append([]modbus.Option{modbus.WithBaud(baud), modbus.WithResponseTimeout(timeout),
		modbus.WithAttempts(attempts), modbus.WithLogger(Logger(env.Logger))}, extra...)
	c := modbus.NewClient(port, opts...)
	return c, port, nil
}
