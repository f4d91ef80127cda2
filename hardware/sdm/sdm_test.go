package sdm

import (
	"context"
	"errors"
	"math"
	"testing"

	"periph.io/x/conn/v3/physic"

	"github.com/gridedge/gridedge/hardware/modbus"
	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/hardware/serialtest"
	"github.com/gridedge/gridedge/shared/wire"
)

// IEEE-754 single precision, high word first, worked by hand:
//
//	230.0   = 1.796875 × 2^7    → sign 0, exp 127+7 = 134 = 0x86, mantissa 0.796875 × 2^23 = 0x660000 → 0x4366_0000
//	5.0     = 1.25 × 2^2        → exp 129 = 0x81, mantissa 0x200000                             → 0x40A0_0000
//	1150.0  = 1.123046875 × 2^10 → exp 137 = 0x89, mantissa 0.123046875 × 2^23 = 0x0FC000        → 0x448F_C000
//	50.0    = 1.5625 × 2^5      → exp 132 = 0x84, mantissa 0x480000                             → 0x4248_0000
//	1234.5  = 1.20556640625 × 2^10 → exp 137, mantissa 0.20556640625 × 2^23 = 0x1A5000           → 0x449A_5000
//	-0.5    = -1.0 × 2^-1       → sign 1, exp 126 = 0x7E                                        → 0xBF00_0000
var (
	f230    = []byte{0x43, 0x66, 0x00, 0x00}
	f5      = []byte{0x40, 0xA0, 0x00, 0x00}
	f1150   = []byte{0x44, 0x8F, 0xC0, 0x00}
	f50     = []byte{0x42, 0x48, 0x00, 0x00}
	f1234_5 = []byte{0x44, 0x9A, 0x50, 0x00}
	fNeg05  = []byte{0xBF, 0x00, 0x00, 0x00}
	fNaN    = []byte{0x7F, 0xC0, 0x00, 0x00}
)

// exchange scripts one float read: request "slave 04 reg 0002" and the
// response "slave 04 04 <float>", CRCs from the modbus layer (whose CRC is
// pinned to published vectors in its own tests).
func exchange(slave byte, reg uint16, value []byte) serialtest.IO {
	req, _ := modbus.Encode(modbus.Frame{Slave: slave, Function: 0x04, Data: []byte{byte(reg >> 8), byte(reg), 0x00, 0x02}})
	if value == nil {
		return serialtest.IO{W: req}
	}
	resp, _ := modbus.Encode(modbus.Frame{Slave: slave, Function: 0x04, Data: append([]byte{0x04}, value...)})
	return serialtest.IO{W: req, R: resp}
}

func open(t *testing.T, model Model, p *serialtest.Playback, cfg sensor.Config) sensor.Sensor {
	t.Helper()
	env := sensor.Env{OpenSerial: func(port string, baud int) (sensor.SerialPort, error) {
		if baud != model.DefaultBaud() {
			t.Errorf("baud %d, want %d", baud, model.DefaultBaud())
		}
		return p, nil
	}}
	if cfg.Options == nil {
		cfg.Options = map[string]any{}
	}
	cfg.Options["port"] = "/dev/ttyUSB0"
	cfg.Options["attempts"] = 1
	cfg.Options["timeout_ms"] = 5000
	s, err := NewSensor(model, cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func check(t *testing.T, got []sensor.Value, want []sensor.Value) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].Quantity != want[i].Quantity || math.Abs(got[i].Value-want[i].Value) > 1e-9 {
			t.Errorf("value %d = %s %v, want %s %v", i, got[i].Quantity.Name(), got[i].Value, want[i].Quantity.Name(), want[i].Value)
		}
	}
}

func TestSDM120(t *testing.T) {
	// The first request written out in full: slave 1, function 04, register
	// 0x0000, 2 registers, CRC 0xCB71 → 01 04 00 00 00 02 71 CB.
	first := exchange(1, 0x0000, f230)
	if want := []byte{0x01, 0x04, 0x00, 0x00, 0x00, 0x02, 0x71, 0xCB}; string(first.W) != string(want) {
		t.Fatalf("request % x, want % x", first.W, want)
	}
	p := &serialtest.Playback{Ops: []serialtest.IO{
		first,
		exchange(1, 0x0006, f5),
		exchange(1, 0x000C, f1150),
		exchange(1, 0x0046, f50),
		exchange(1, 0x0048, f1234_5),
	}}
	s := open(t, SDM120, p, sensor.Config{Channel: "heatpump", Driver: DriverSDM120, Quantities: []wire.Quantity{
		wire.Quantity_QUANTITY_ENERGY, wire.Quantity_QUANTITY_VOLTAGE, wire.Quantity_QUANTITY_CURRENT,
		wire.Quantity_QUANTITY_ACTIVE_POWER, wire.Quantity_QUANTITY_FREQUENCY,
	}})
	got, err := s.Sense(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	check(t, got, []sensor.Value{
		{Quantity: wire.Quantity_QUANTITY_VOLTAGE, Value: 230},
		{Quantity: wire.Quantity_QUANTITY_CURRENT, Value: 5},
		{Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: 1150},
		{Quantity: wire.Quantity_QUANTITY_FREQUENCY, Value: 50},
		{Quantity: wire.Quantity_QUANTITY_ENERGY, Value: 1234500}, // 1234.5 kWh
	})
	if err := p.Done(); err != nil {
		t.Error(err)
	}
	if s.String() != "sdm120@0x01/L1@/dev/ttyUSB0" {
		t.Errorf("String = %q", s)
	}
}

func TestSDM630Phases(t *testing.T) {
	// Phase 3 of meter 7: voltage 0x0000+2×2 = 0x0004, current 0x0006+4 =
	// 0x000A, power 0x000C+4 = 0x0010, PF 0x001E+4 = 0x0022 (reverse
	// current: -0.5); export energy 0x004A.
	p := &serialtest.Playback{Ops: []serialtest.IO{
		exchange(7, 0x0004, f230),
		exchange(7, 0x000A, f5),
		exchange(7, 0x0010, f1150),
		exchange(7, 0x0022, fNeg05),
		exchange(7, 0x004A, f1234_5),
	}}
	s := open(t, SDM630, p, sensor.Config{Driver: DriverSDM630, Options: map[string]any{"address": 7, "phase": "3", "energy": "export"},
		Quantities: []wire.Quantity{wire.Quantity_QUANTITY_VOLTAGE, wire.Quantity_QUANTITY_CURRENT, wire.Quantity_QUANTITY_ACTIVE_POWER,
			wire.Quantity_QUANTITY_POWER_FACTOR, wire.Quantity_QUANTITY_ENERGY}})
	got, err := s.Sense(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	check(t, got, []sensor.Value{
		{Quantity: wire.Quantity_QUANTITY_VOLTAGE, Value: 230},
		{Quantity: wire.Quantity_QUANTITY_CURRENT, Value: 5},
		{Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: 1150},
		{Quantity: wire.Quantity_QUANTITY_POWER_FACTOR, Value: -0.5},
		{Quantity: wire.Quantity_QUANTITY_ENERGY, Value: 1234500},
	})

	// Totals: average L-N voltage 0x002A, total power 0x0034, total kWh 0x0156.
	p = &serialtest.Playback{Ops: []serialtest.IO{
		exchange(1, 0x002A, f230),
		exchange(1, 0x0034, f1150),
		exchange(1, 0x0156, f1234_5),
	}}
	s = open(t, SDM630, p, sensor.Config{Driver: DriverSDM630, Options: map[string]any{"phase": "total", "energy": "total"},
		Quantities: []wire.Quantity{wire.Quantity_QUANTITY_VOLTAGE, wire.Quantity_QUANTITY_ACTIVE_POWER, wire.Quantity_QUANTITY_ENERGY}})
	if _, err := s.Sense(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.Done(); err != nil {
		t.Error(err)
	}
}

func TestDevSense(t *testing.T) {
	// All eight quantities of an SDM120, in Quantities() order.
	p := &serialtest.Playback{Ops: []serialtest.IO{
		exchange(1, 0x0000, f230),
		exchange(1, 0x0006, f5),
		exchange(1, 0x000C, f1150),
		exchange(1, 0x0012, f1150),  // VA
		exchange(1, 0x0018, fNeg05), // var
		exchange(1, 0x001E, fNeg05), // PF
		exchange(1, 0x0046, f50),
		exchange(1, 0x0048, f1234_5),
	}}
	d, err := New(modbus.NewClient(p, modbus.WithAttempts(1)), &Opts{Model: SDM120, Phase: 1})
	if err != nil {
		t.Fatal(err)
	}
	var m Measurement
	if err := d.Sense(context.Background(), &m); err != nil {
		t.Fatal(err)
	}
	want := Measurement{Voltage: 230 * physic.Volt, Current: 5 * physic.Ampere, ActivePower: 1150 * physic.Watt,
		ApparentPower: 1150, ReactivePower: -0.5, PowerFactor: -0.5, Frequency: 50 * physic.Hertz, EnergyWh: 1234500}
	if m != want {
		t.Errorf("Sense = %+v, want %+v", m, want)
	}
	if err := p.Done(); err != nil {
		t.Error(err)
	}
}

func TestPartialAndFailedReads(t *testing.T) {
	exc := exchange(1, 0x0006, nil)
	exc.R, _ = modbus.Encode(modbus.Frame{Slave: 1, Function: 0x84, Data: []byte{modbus.ExceptionIllegalDataAddress}})
	p := &serialtest.Playback{Ops: []serialtest.IO{
		exchange(1, 0x0000, f230),
		exc,                       // current refused
		exchange(1, 0x000C, fNaN), // power garbage
		exchange(1, 0x0046, nil),  // meter falls silent: the round stops here
	}}
	s := open(t, SDM120, p, sensor.Config{Driver: DriverSDM120, Quantities: []wire.Quantity{
		wire.Quantity_QUANTITY_VOLTAGE, wire.Quantity_QUANTITY_CURRENT, wire.Quantity_QUANTITY_ACTIVE_POWER,
		wire.Quantity_QUANTITY_FREQUENCY, wire.Quantity_QUANTITY_ENERGY,
	}})
	got, err := s.Sense(context.Background())
	check(t, got, []sensor.Value{{Quantity: wire.Quantity_QUANTITY_VOLTAGE, Value: 230}})
	var e *modbus.ExceptionError
	if !errors.As(err, &e) || !errors.Is(err, modbus.ErrUnexpectedResponse) || !errors.Is(err, modbus.ErrTimeout) {
		t.Errorf("err = %v, want exception, NaN and timeout", err)
	}
	if err := p.Done(); err != nil {
		t.Errorf("energy must not be asked after the timeout: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	env := sensor.Env{OpenSerial: func(string, int) (sensor.SerialPort, error) { return &serialtest.Playback{}, nil }}
	for name, tc := range map[string]struct {
		model Model
		opts  map[string]any
	}{
		"sdm120 phase 2":  {SDM120, map[string]any{"port": "/dev/ttyS0", "phase": "2"}},
		"sdm120 total":    {SDM120, map[string]any{"port": "/dev/ttyS0", "phase": "total"}},
		"phase 4":         {SDM630, map[string]any{"port": "/dev/ttyS0", "phase": "4"}},
		"energy reactive": {SDM630, map[string]any{"port": "/dev/ttyS0", "energy": "reactive"}},
		"unknown option":  {SDM630, map[string]any{"port": "/dev/ttyS0", "parity": "even"}},
		"no port":         {SDM630, nil},
	} {
		if _, err := NewSensor(tc.model, sensor.Config{Driver: tc.model.String(), Options: tc.opts}, env); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
