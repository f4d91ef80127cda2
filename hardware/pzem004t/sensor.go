package pzem004t

import (
	"context"
	"errors"
	"fmt"

	"periph.io/x/conn/v3/physic"

	"github.com/gridedge/gridedge/hardware/internal/drv"
	"github.com/gridedge/gridedge/hardware/modbus"
	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/wire"
)

// DriverName is the name channels use in the agent configuration.
const DriverName = "pzem004t"

// Options are a channel's driver options.
type Options struct {
	drv.SerialOptions `yaml:",inline"`
	// Address is the meter's Modbus address, 1..247; default 0xF8 (any
	// single meter).
	Address byte `yaml:"address"`
}

var offered = []wire.Quantity{
	wire.Quantity_QUANTITY_VOLTAGE,
	wire.Quantity_QUANTITY_CURRENT,
	wire.Quantity_QUANTITY_ACTIVE_POWER,
	wire.Quantity_QUANTITY_ENERGY,
	wire.Quantity_QUANTITY_FREQUENCY,
	wire.Quantity_QUANTITY_POWER_FACTOR,
}

// Driver is the registry entry.
func Driver() sensor.Driver {
	return sensor.Driver{Name: DriverName, Summary: "Peacefair PZEM-004T v3 AC meter on Modbus-RTU (9600 8N1): V, A, W, Wh, Hz, PF", New: NewSensor, Check: Check}
}

// Check validates a channel's configuration without opening the port, with
// the rules NewSensor applies.
func Check(cfg sensor.Config) error {
	_, err := parse(cfg)
	return err
}

// parse decodes and checks the options; every problem names its option.
func parse(cfg sensor.Config) (Options, error) {
	var o Options
	if err := cfg.DecodeOptions(&o); err != nil {
		return o, err
	}
	var p drv.Problems
	p.Add(drv.CheckQuantities(cfg, offered...))
	o.SerialOptions.Check(&p)
	if _, err := New(nil, &Opts{Address: o.Address}); err != nil {
		p.Option("address", "%v", err)
	}
	return o, p.Err()
}

// NewSensor builds a channel's sensor from its configuration.
func NewSensor(cfg sensor.Config, env sensor.Env) (sensor.Sensor, error) {
	o, err := parse(cfg)
	if err != nil {
		return nil, err
	}
	c, port, err := drv.OpenModbus(env, o.SerialOptions, Baud, modbus.WithWildcardAddress(GeneralAddress))
	if err != nil {
		return nil, fmt.Errorf("pzem004t: %w", err)
	}
	dev, err := New(c, &Opts{Address: o.Address})
	if err != nil {
		return nil, errors.Join(err, port.Close())
	}
	return &Sensor{dev: dev, port: port, cfg: cfg, name: fmt.Sprintf("%s@%s", dev, o.Port)}, nil
}

// Sensor adapts a Dev to sensor.Sensor.
type Sensor struct {
	dev  *Dev
	port interface{ Close() error }
	cfg  sensor.Config
	name string
}

// Sense reads the meter and returns the wanted quantities in base units.
func (s *Sensor) Sense(ctx context.Context) ([]sensor.Value, error) {
	var m Measurement
	if err := s.dev.Sense(ctx, &m); err != nil {
		return nil, err
	}
	v := drv.NewValues(s.cfg)
	v.Add(wire.Quantity_QUANTITY_VOLTAGE, float64(m.Voltage)/float64(physic.Volt))
	v.Add(wire.Quantity_QUANTITY_CURRENT, float64(m.Current)/float64(physic.Ampere))
	v.Add(wire.Quantity_QUANTITY_ACTIVE_POWER, float64(m.Power)/float64(physic.Watt))
	v.Add(wire.Quantity_QUANTITY_ENERGY, float64(m.EnergyWh))
	v.Add(wire.Quantity_QUANTITY_FREQUENCY, float64(m.Frequency)/float64(physic.Hertz))
	v.Add(wire.Quantity_QUANTITY_POWER_FACTOR, m.PowerFactor)
	return v.List(), nil
}

// String is "pzem004t@0xaddr@port".
func (s *Sensor) String() string { return s.name }

// Close releases the serial port.
func (s *Sensor) Close() error { return s.port.Close() }
