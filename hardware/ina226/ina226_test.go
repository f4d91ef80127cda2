package ina226

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"

	"github.com/gridedge/gridedge/hardware/internal/bustest"
	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/wire"
)

// Worked example: Rshunt = 0.1 Ω (the R100 on common breakouts), max
// 0.8192 A (the full ±81.92 mV range across 0.1 Ω).
//
//	Current_LSB = 0.8192 A / 32768 = 25 µA
//	CAL         = trunc(0.00512 / (25e-6 × 0.1)) = 2048 = 0x0800
//	Power_LSB   = 25 × 25 µA = 625 µW
//	Config      = 0x4000 (reserved 100) | AVG 1 (000) | VBUSCT 1.1 ms (100<<6 = 0x0100)
//	            | VSHCT 1.1 ms (100<<3 = 0x0020) | MODE 111 = 0x4127 (the power-on default)
//
// 12.000 V bus, 0.5 A load:
//
//	Shunt   = 0.5 × 0.1 = 50 mV = 20000 × 2.5 µV     → 0x4E20
//	Bus     = 12 V / 1.25 mV = 9600                   → 0x2580
//	Current = 20000 × 2048 / 2048 = 20000             → 0x4E20 → 20000 × 25 µA = 0.5 A
//	Power   = 20000 × 9600 / 20000 = 9600             → 0x2580 → 9600 × 625 µW = 6 W
var (
	opInit = []i2ctest.IO{
		{Addr: 0x40, W: []byte{0xFE}, R: []byte{0x54, 0x49}},
		{Addr: 0x40, W: []byte{0xFF}, R: []byte{0x22, 0x60}},
		{Addr: 0x40, W: []byte{0x00, 0x41, 0x27}},
		{Addr: 0x40, W: []byte{0x05, 0x08, 0x00}},
	}
	opCal     = i2ctest.IO{Addr: 0x40, W: []byte{0x05}, R: []byte{0x08, 0x00}}
	opMask    = i2ctest.IO{Addr: 0x40, W: []byte{0x06}, R: []byte{0x00, 0x08}}
	opBus     = i2ctest.IO{Addr: 0x40, W: []byte{0x02}, R: []byte{0x25, 0x80}}
	opShunt   = i2ctest.IO{Addr: 0x40, W: []byte{0x01}, R: []byte{0x4E, 0x20}}
	opCurrent = i2ctest.IO{Addr: 0x40, W: []byte{0x04}, R: []byte{0x4E, 0x20}}
	opPower   = i2ctest.IO{Addr: 0x40, W: []byte{0x03}, R: []byte{0x25, 0x80}}
	opRead    = []i2ctest.IO{opCal, opMask, opBus, opShunt, opCurrent, opPower}
)

func ops(groups ...[]i2ctest.IO) []i2ctest.IO {
	var out []i2ctest.IO
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

var breakout = Opts{SenseResistor: 100 * physic.MilliOhm, MaxCurrent: 819200 * physic.MicroAmpere}

func TestSense(t *testing.T) {
	bus := &i2ctest.Playback{Ops: ops(opInit, opRead), DontPanic: true}
	d, err := New(bus, &breakout)
	if err != nil {
		t.Fatal(err)
	}
	var m PowerMonitor
	if err := d.Sense(&m); err != nil {
		t.Fatal(err)
	}
	want := PowerMonitor{Shunt: 50 * physic.MilliVolt, Voltage: 12 * physic.Volt, Current: 500 * physic.MilliAmpere, Power: 6 * physic.Watt}
	if m != want {
		t.Errorf("Sense = %+v, want %+v", m, want)
	}
	if err := bus.Close(); err != nil {
		t.Error(err)
	}
}

func TestReverseCurrent(t *testing.T) {
	// -20000 as int16 is 0xB1E0: -50 mV across the shunt, -0.5 A.
	shunt, current := opShunt, opCurrent
	shunt.R = []byte{0xB1, 0xE0}
	current.R = []byte{0xB1, 0xE0}
	bus := &i2ctest.Playback{Ops: ops(opInit, []i2ctest.IO{opCal, opMask, opBus, shunt, current, opPower}), DontPanic: true}
	d, err := New(bus, &breakout)
	if err != nil {
		t.Fatal(err)
	}
	var m PowerMonitor
	if err := d.Sense(&m); err != nil {
		t.Fatal(err)
	}
	if m.Current != -500*physic.MilliAmpere || m.Shunt != -50*physic.MilliVolt {
		t.Errorf("reverse: %+v", m)
	}
}

func TestOverflowIsAnError(t *testing.T) {
	ovf := opMask
	ovf.R = []byte{0x00, 0x0C} // CVRF | OVF
	bus := &i2ctest.Playback{Ops: ops(opInit, []i2ctest.IO{opCal, ovf}), DontPanic: true}
	d, err := New(bus, &breakout)
	if err != nil {
		t.Fatal(err)
	}
	var m PowerMonitor
	if err := d.Sense(&m); !errors.Is(err, ErrOverflow) {
		t.Fatalf("err = %v, want ErrOverflow", err)
	}
}

func TestConversionReady(t *testing.T) {
	notReady := opMask
	notReady.R = []byte{0x00, 0x00}
	bus := &i2ctest.Playback{Ops: ops(opInit, []i2ctest.IO{opCal, notReady, notReady, notReady}), DontPanic: true}
	d, err := New(bus, &breakout)
	if err != nil {
		t.Fatal(err)
	}
	var m PowerMonitor
	if err := d.Sense(&m); !errors.Is(err, ErrNotReady) {
		t.Fatalf("err = %v, want ErrNotReady", err)
	}
	bus = &i2ctest.Playback{Ops: ops(opInit, []i2ctest.IO{opCal, notReady}, opRead[1:]), DontPanic: true}
	if d, err = New(bus, &breakout); err != nil {
		t.Fatal(err)
	}
	if err := d.Sense(&m); err != nil {
		t.Fatalf("ready on second poll: %v", err)
	}
}

func TestIdentity(t *testing.T) {
	// An INA219 at the same address has no ID registers; a foreign chip
	// answers with something else. Either way New refuses.
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{
		{Addr: 0x40, W: []byte{0xFE}, R: []byte{0x54, 0x49}},
		{Addr: 0x40, W: []byte{0xFF}, R: []byte{0x22, 0x70}},
	}, DontPanic: true}
	if _, err := New(bus, &breakout); !errors.Is(err, ErrNotINA226) {
		t.Errorf("err = %v, want ErrNotINA226", err)
	}
}

func TestReprogramsAfterReset(t *testing.T) {
	lost := opCal
	lost.R = []byte{0x00, 0x00}
	bus := &i2ctest.Playback{Ops: ops(opInit, []i2ctest.IO{lost}, opInit[2:], opRead), DontPanic: true}
	d, err := New(bus, &breakout)
	if err != nil {
		t.Fatal(err)
	}
	var m PowerMonitor
	if err := d.Sense(&m); !errors.Is(err, ErrReset) {
		t.Fatalf("err = %v, want ErrReset", err)
	}
	if err := d.Sense(&m); err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Error(err)
	}
}

func TestNACK(t *testing.T) {
	play := &i2ctest.Playback{Ops: ops(opInit, opRead[:1]), DontPanic: true}
	bus := &bustest.I2C{BusCloser: play, Fail: map[int]error{5: bustest.ErrNACK, 6: bustest.ErrNACK, 7: bustest.ErrNACK}}
	d, err := New(bus, &breakout)
	if err != nil {
		t.Fatal(err)
	}
	var m PowerMonitor
	err = d.Sense(&m)
	if !errors.Is(err, bustest.ErrNACK) || !strings.Contains(err.Error(), "ina226") || !strings.Contains(err.Error(), "mask/enable (0x06)") {
		t.Errorf("err = %v, want NACK naming ina226 and mask/enable (0x06)", err)
	}
}

func TestBadOpts(t *testing.T) {
	for name, o := range map[string]Opts{
		"shunt drop above 81.92 mV": {SenseResistor: 100 * physic.MilliOhm, MaxCurrent: physic.Ampere},
		"samples 2":                 {SenseResistor: 100 * physic.MilliOhm, MaxCurrent: 500 * physic.MilliAmpere, Samples: 2},
		"calibration overflow":      {SenseResistor: physic.MilliOhm, MaxCurrent: 10 * physic.MilliAmpere},
	} {
		if _, err := New(&i2ctest.Playback{DontPanic: true}, &o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSensor(t *testing.T) {
	play := &i2ctest.Playback{Ops: ops(opInit, opRead), DontPanic: true}
	env := sensor.Env{OpenI2C: func(string) (i2c.BusCloser, error) { return play, nil }}
	s, err := NewSensor(sensor.Config{Channel: "battery", Driver: DriverName,
		Quantities: []wire.Quantity{wire.Quantity_QUANTITY_ACTIVE_POWER, wire.Quantity_QUANTITY_CURRENT}}, env)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Sense(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Quantity != wire.Quantity_QUANTITY_CURRENT || math.Abs(got[0].Value-0.5) > 1e-12 ||
		got[1].Quantity != wire.Quantity_QUANTITY_ACTIVE_POWER || math.Abs(got[1].Value-6) > 1e-12 {
		t.Errorf("Sense = %+v, want current 0.5 A and power 6 W only", got)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}
