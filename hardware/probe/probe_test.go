package probe

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"

	"github.com/gridedge/gridedge/hardware/modbus"
	"github.com/gridedge/gridedge/hardware/sensor"
)

// fakeI2C is a bus with register-file devices; other addresses NACK.
type fakeI2C struct {
	devs map[uint16]map[byte][]byte
	// writes records any transaction that wrote more than a register
	// pointer: the probe must never write a register.
	writes []string
}

var errNACK = errors.New("fake i2c: no acknowledge")

func (b *fakeI2C) String() string                  { return "fake" }
func (b *fakeI2C) Close() error                    { return nil }
func (b *fakeI2C) SetSpeed(physic.Frequency) error { return nil }
func (b *fakeI2C) SCL() gpio.PinIO                 { return gpio.INVALID }
func (b *fakeI2C) SDA() gpio.PinIO                 { return gpio.INVALID }
func (b *fakeI2C) Tx(addr uint16, w, r []byte) error {
	regs, ok := b.devs[addr]
	if !ok {
		return errNACK
	}
	if len(w) > 1 {
		b.writes = append(b.writes, string(w))
	}
	if len(w) == 0 {
		for i := range r {
			r[i] = 0
		}
		return nil
	}
	copy(r, regs[w[0]])
	return nil
}

// line simulates Modbus slaves on one serial port at one baud rate.
type line struct {
	baud   int
	slaves map[byte][]byte // slave → data of its answer to function 0x04 at 0x0000 (any count)
	exc    map[byte]byte   // slave → exception code
	mu     sync.Mutex
	in     []byte
}

func (l *line) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := modbus.Decode(b)
	if err != nil {
		return 0, err
	}
	if code, ok := l.exc[f.Slave]; ok {
		resp, _ := modbus.Encode(modbus.Frame{Slave: f.Slave, Function: f.Function | 0x80, Data: []byte{code}})
		l.in = append(l.in, resp...)
	} else if regs, ok := l.slaves[f.Slave]; ok {
		n := int(f.Data[3]) * 2
		resp, _ := modbus.Encode(modbus.Frame{Slave: f.Slave, Function: 0x04, Data: append([]byte{byte(n)}, regs[:n]...)})
		l.in = append(l.in, resp...)
	}
	return len(b), nil
}

func (l *line) Read(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.in) == 0 {
		return 0, os.ErrDeadlineExceeded
	}
	n := copy(b, l.in)
	l.in = l.in[n:]
	return n, nil
}
func (l *line) SetReadTimeout(time.Duration) error { return nil }
func (l *line) Flush() error                       { l.mu.Lock(); l.in = nil; l.mu.Unlock(); return nil }
func (l *line) Close() error                       { return nil }

func TestProbe(t *testing.T) {
	bus := &fakeI2C{devs: map[uint16]map[byte][]byte{
		// INA226: IDs, bus 0x2580 = 9600 × 1.25 mV = 12 V, shunt 0x4E20 = 20000 × 2.5 µV = 50 mV.
		0x40: {0xFE: {0x54, 0x49}, 0xFF: {0x22, 0x60}, 0x02: {0x25, 0x80}, 0x01: {0x4E, 0x20}},
		// INA219 at power-on: config 0x399F; bus 0x5DC2 >> 3 = 3000 × 4 mV = 12 V; shunt 4000 × 10 µV = 40 mV.
		0x41: {0xFE: {0x00, 0x00}, 0xFF: {0x00, 0x00}, 0x00: {0x39, 0x9F}, 0x02: {0x5D, 0xC2}, 0x01: {0x0F, 0xA0}},
		// DS3231: 2026-11-23 01:45:30, OSF clear, 25.25 °C.
		0x68: {0x00: {0x30, 0x45, 0x01, 0x02, 0x23, 0x11, 0x26}, 0x0F: {0x08}, 0x11: {0x19, 0x40}},
		0x3C: {}, // a display controller
	}}
	// PZEM at address 1, 9600: 230.1 V, 1.234 A, 283.9 W, 70000 Wh, 50.0 Hz, PF 1.00.
	pzem := []byte{0x08, 0xFD, 0x04, 0xD2, 0x00, 0x00, 0x0B, 0x17, 0x00, 0x00, 0x11, 0x70, 0x00, 0x01, 0x01, 0xF4, 0x00, 0x64, 0x00, 0x00}
	// SDM120 at address 2, 2400: 230.0 V as float32 0x43660000.
	sdm := []byte{0x43, 0x66, 0x00, 0x00}
	lines := map[int]*line{
		9600: {baud: 9600, slaves: map[byte][]byte{1: pzem}, exc: map[byte]byte{3: 0x02}},
		2400: {baud: 2400, slaves: map[byte][]byte{2: sdm}},
	}
	env := sensor.Env{
		OpenI2C: func(name string) (i2c.BusCloser, error) {
			if name != "1" {
				return nil, errors.New("no such bus")
			}
			return bus, nil
		},
		OpenSerial: func(port string, baud int) (sensor.SerialPort, error) { return lines[baud], nil },
	}
	var out bytes.Buffer
	err := Probe(context.Background(), env, Options{I2CBuses: []string{"1", "9"}, SerialPorts: []string{"/dev/ttyUSB0"}, MaxModbusAddress: 3}, &out)
	if err == nil || !strings.Contains(err.Error(), "no such bus") {
		t.Errorf("err = %v, want the missing bus 9 reported", err)
	}
	text := out.String()
	for _, want := range []string{
		"i2c 1 0x3c  unknown device\n",
		"i2c 1 0x40  INA226 (id 0x5449/0x2260)  bus 12.000 V, shunt 50.0000 mV\n",
		"i2c 1 0x41  INA219 (likely; no ID register)  bus 12.000 V, shunt 40.00 mV (config 0x399f)\n",
		"i2c 1 0x68  DS3231 RTC (likely)  time 2026-11-23T01:45:30Z, 25.25 °C\n",
		"i2c 1: 4 device(s) in 0x03-0x77\n",
		"i2c 9: no such bus\n",
		"serial /dev/ttyUSB0 9600 baud addr 1  PZEM-004T v3  230.1 V 1.234 A 283.9 W 70000 Wh 50.0 Hz PF 1.00\n",
		"serial /dev/ttyUSB0 9600 baud addr 3  Modbus device (not identified: exception 0x02)\n",
		"serial /dev/ttyUSB0 2400 baud addr 2  Eastron SDM (float registers; SDM120 or SDM630)  phase 1 230.0 V\n",
		"probe: scanned I²C buses 1, 9 and serial port /dev/ttyUSB0: 7 device(s) found\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q\n--- output ---\n%s", want, text)
		}
	}
	if n := strings.Count(text, "addr 3 "); n != 1 {
		t.Errorf("address 3 reported %d times, want once", n)
	}
	if len(bus.writes) != 0 {
		t.Errorf("probe wrote registers: %q", bus.writes)
	}
}

// An empty bus and a silent line are scanned and reported, and the result
// is ErrNothingFound, not success.
func TestProbeNothingFound(t *testing.T) {
	env := sensor.Env{
		OpenI2C:    func(string) (i2c.BusCloser, error) { return &fakeI2C{}, nil },
		OpenSerial: func(_ string, baud int) (sensor.SerialPort, error) { return &line{baud: baud}, nil },
	}
	var out bytes.Buffer
	err := Probe(context.Background(), env, Options{I2CBuses: []string{"1"}, SerialPorts: []string{"/dev/ttyS0"}, MaxModbusAddress: 1, ModbusTimeout: time.Millisecond}, &out)
	if !errors.Is(err, ErrNothingFound) {
		t.Fatalf("err = %v, want ErrNothingFound", err)
	}
	want := "i2c 1: 0 device(s) in 0x03-0x77\nserial /dev/ttyS0: 0 meter answer(s)\nprobe: scanned I²C bus 1 and serial port /dev/ttyS0: 0 device(s) found\n"
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	if err := Probe(context.Background(), env, Options{}, &out); !errors.Is(err, ErrNothingFound) ||
		out.String() != "probe: scanned no I²C buses and no serial ports: 0 device(s) found\n" {
		t.Fatalf("nothing to scan: err = %v, output %q", err, out.String())
	}
}
