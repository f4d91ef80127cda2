package ina219

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

// Worked example: the common breakout, Rshunt = 0.1 Ω, max 3.2 A, 32 V.
//
//	Current_LSB = 3.2 A / 32768            = 97.65625 µA
//	Cal         = trunc(0.04096 / (97.65625e-6 × 0.1)) = trunc(4194.304) = 4194 = 0x1062
//	Power_LSB   = 20 × 97.65625 µA          = 1.953125 mW
//	Max shunt   = 3.2 A × 0.1 Ω = 320 mV     → PGA /8 (PG = 11)
//	Config      = BRNG(1<<13) | PG(3<<11) | BADC 12-bit(3<<7) | SADC(3<<3) | MODE 111
//	            = 0x2000 | 0x1800 | 0x0180 | 0x0018 | 0x0007 = 0x399F (the power-on default)
//
// A 12.000 V supply driving 0.4 A:
//
//	Shunt  = 0.4 A × 0.1 Ω = 40 mV = 4000 × 10 µV           → 0x0FA0
//	Bus    = 12 V / 4 mV = 3000, << 3 = 0x5DC0, | CNVR (0x2) → 0x5DC2
//	Current register = trunc(4000 × 4194 / 4096) = 4095     → 0x0FFF
//	  → 4095 × 97.65625 µA = 0.39990234375 A (399902344 nA after rounding)
//	Power register   = trunc(4095 × 3000 / 5000) = 2457     → 0x0999
//	  → 2457 × 1.953125 mW = 4.798828125 W
var (
	opInit = []i2ctest.IO{
		{Addr: 0x40, W: []byte{0x00, 0x39, 0x9F}},
		{Addr: 0x40, W: []byte{0x05, 0x10, 0x62}},
	}
	opCal     = i2ctest.IO{Addr: 0x40, W: []byte{0x05}, R: []byte{0x10, 0x62}}
	opBus     = i2ctest.IO{Addr: 0x40, W: []byte{0x02}, R: []byte{0x5D, 0xC2}}
	opShunt   = i2ctest.IO{Addr: 0x40, W: []byte{0x01}, R: []byte{0x0F, 0xA0}}
	opCurrent = i2ctest.IO{Addr: 0x40, W: []byte{0x04}, R: []byte{0x0F, 0xFF}}
	opPower   = i2ctest.IO{Addr: 0x40, W: []byte{0x03}, R: []byte{0x09, 0x99}}
)

func ops(groups ...[]i2ctest.IO) []i2ctest.IO {
	var out []i2ctest.IO
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

var breakout = Opts{SenseResistor: 100 * physic.MilliOhm, MaxCurrent: 3200 * physic.MilliAmpere}

func TestSense(t *testing.T) {
	bus := &i2ctest.Playback{Ops: ops(opInit, []i2ctest.IO{opCal, opBus, opShunt, opCurrent, opPower}), DontPanic: true}
	d, err := New(bus, &breakout)
	if err != nil {
		t.Fatal(err)
	}
	if d.Calibration() != 0x1062 {
		t.Errorf("Calibration = %#04x, want 0x1062", d.Calibration())
	}
	var m PowerMonitor
	if err := d.Sense(&m); err != nil {
		t.Fatal(err)
	}
	want := PowerMonitor{
		Shunt:   40 * physic.MilliVolt,
		Voltage: 12 * physic.Volt,
		Current: 399902344 * physic.NanoAmpere,
		Power:   4798828125 * physic.NanoWatt,
	}
	if m != want {
		t.Errorf("Sense = %+v, want %+v", m, want)
	}
	if err := bus.Close(); err != nil {
		t.Error(err)
	}
}

func TestConfigOtherRange(t *testing.T) {
	// Rshunt = 0.01 Ω, max 10 A, 16 V bus, 128 samples:
	//	max shunt = 100 mV → PGA /4 (PG = 10)
	//	Current_LSB = 10 / 32768 = 305.17578125 µA
	//	Cal = trunc(0.04096 / (305.17578125e-6 × 0.01)) = trunc(13421.77) = 13421,
	//	bit 0 void → 13420 = 0x346C
	//	ADC 128 samples = 0b1111 → BADC 0x0780, SADC 0x0078
	//	Config = PG(2<<11 = 0x1000) | 0x0780 | 0x0078 | 0x7 = 0x17FF
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{
		{Addr: 0x45, W: []byte{0x00, 0x17, 0xFF}},
		{Addr: 0x45, W: []byte{0x05, 0x34, 0x6C}},
	}, DontPanic: true}
	_, err := New(bus, &Opts{Address: 0x45, SenseResistor: 10 * physic.MilliOhm, MaxCurrent: 10 * physic.Ampere, BusRange: 16 * physic.Volt, Samples: 128})
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Error(err)
	}
}

func TestBadOpts(t *testing.T) {
	for name, o := range map[string]Opts{
		"shunt drop above 320 mV": {SenseResistor: physic.Ohm, MaxCurrent: physic.Ampere},
		"zero shunt":              {MaxCurrent: physic.Ampere},
		"samples not power of 2":  {SenseResistor: 100 * physic.MilliOhm, MaxCurrent: physic.Ampere, Samples: 3},
		"bus range 24 V":          {SenseResistor: 100 * physic.MilliOhm, MaxCurrent: physic.Ampere, BusRange: 24 * physic.Volt},
		"address off chip":        {Address: 0x68, SenseResistor: 100 * physic.MilliOhm, MaxCurrent: physic.Ampere},
		"calibration overflow":    {SenseResistor: physic.MilliOhm, MaxCurrent: 10 * physic.MilliAmpere},
	} {
		if _, err := New(&i2ctest.Playback{DontPanic: true}, &o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestOverflowIsAnError(t *testing.T) {
	ovf := opBus
	ovf.R = []byte{0x5D, 0xC3} // CNVR and OVF
	bus := &i2ctest.Playback{Ops: ops(opInit, []i2ctest.IO{opCal, ovf}), DontPanic: true}
	d, err := New(bus, &breakout)
	if err != nil {
		t.Fatal(err)
	}
	var m PowerMonitor
	if err := d.Sense(&m); !errors.Is(err, ErrOverflow) {
		t.Fatalf("err = %v, want ErrOverflow", err)
	}
	if m != (PowerMonitor{}) {
		t.Errorf("overflowed reading filled in: %+v", m)
	}
}

func TestWaitsForConversionReady(t *testing.T) {
	notReady := opBus
	notReady.R = []byte{0x5D, 0xC0}
	bus := &i2ctest.Playback{Ops: ops(opInit, []i2ctest.IO{opCal, notReady, opBus, opShunt, opCurrent, opPower}), DontPanic: true}
	d, err := New(bus, &breakout)
	if err != nil {
		t.Fatal(err)
	}
	var m PowerMonitor
	if err := d.Sense(&m); err != nil {
		t.Fatal(err)
	}
	if m.Voltage != 12*physic.Volt {
		t.Errorf("Voltage = %v", m.Voltage)
	}

	bus = &i2ctest.Playback{Ops: ops(opInit, []i2ctest.IO{opCal, notReady, notReady, notReady}), DontPanic: true}
	if d, err = New(bus, &breakout); err != nil {
		t.Fatal(err)
	}
	if err := d.Sense(&m); !errors.Is(err, ErrNotReady) {
		t.Errorf("err = %v, want ErrNotReady", err)
	}
}

func TestReprogramsAfterReset(t *testing.T) {
	lost := opCal
	lost.R = []byte{0x00, 0x00} // power-on value
	bus := &i2ctest.Playback{Ops: ops(opInit, []i2ctest.IO{lost}, opInit, []i2ctest.IO{opCal, opBus, opShunt, opCurrent, opPower}), DontPanic: true}
	d, err := New(bus, &breakout)
	if err != nil {
		t.Fatal(err)
	}
	var m PowerMonitor
	if err := d.Sense(&m); !errors.Is(err, ErrReset) {
		t.Fatalf("err = %v, want ErrReset", err)
	}
	if err := d.Sense(&m); err != nil {
		t.Fatalf("after re-programming: %v", err)
	}
	if err := bus.Close(); err != nil {
		t.Error(err)
	}
}

func TestNACK(t *testing.T) {
	// Transaction 3 (the first bus-voltage read) is NACKed once, then retried.
	play := &i2ctest.Playback{Ops: ops(opInit, []i2ctest.IO{opCal, opBus, opShunt, opCurrent, opPower}), DontPanic: true}
	bus := &bustest.I2C{BusCloser: play, Fail: map[int]error{3: bustest.ErrNACK}}
	d, err := New(bus, &breakout)
	if err != nil {
		t.Fatal(err)
	}
	var m PowerMonitor
	if err := d.Sense(&m); err != nil {
		t.Fatalf("one NACK not retried: %v", err)
	}

	// A chip that never answers: 3 attempts, then an error naming chip and register.
	play = &i2ctest.Playback{Ops: ops(opInit, []i2ctest.IO{opCal}), DontPanic: true}
	bus = &bustest.I2C{BusCloser: play, Fail: map[int]error{3: bustest.ErrNACK, 4: bustest.ErrNACK, 5: bustest.ErrNACK}}
	if d, err = New(bus, &breakout); err != nil {
		t.Fatal(err)
	}
	err = d.Sense(&m)
	if !errors.Is(err, bustest.ErrNACK) || !strings.Contains(err.Error(), "ina219") || !strings.Contains(err.Error(), "bus voltage (0x02)") {
		t.Errorf("err = %v, want wrapped NACK naming ina219 and bus voltage (0x02)", err)
	}
}

func TestSensor(t *testing.T) {
	play := &i2ctest.Playback{Ops: ops(opInit, []i2ctest.IO{opCal, opBus, opShunt, opCurrent, opPower}), DontPanic: true}
	env := sensor.Env{OpenI2C: func(name string) (i2c.BusCloser, error) {
		if name != "1" {
			t.Errorf("opened bus %q, want 1", name)
		}
		return play, nil
	}}
	s, err := NewSensor(sensor.Config{Channel: "dc", Driver: DriverName, Options: map[string]any{
		"bus": "1", "address": 0x40, "shunt_ohms": 0.1, "max_current_a": 3.2,
	}}, env)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Sense(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[wire.Quantity]float64{
		wire.Quantity_QUANTITY_VOLTAGE:      12,
		wire.Quantity_QUANTITY_CURRENT:      0.399902344,
		wire.Quantity_QUANTITY_ACTIVE_POWER: 4.798828125,
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for _, v := range got {
		if math.Abs(v.Value-want[v.Quantity]) > 1e-9 {
			t.Errorf("%s = %v, want %v", v.Quantity.Name(), v.Value, want[v.Quantity])
		}
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}

func TestSensorConfigErrors(t *testing.T) {
	env := sensor.Env{OpenI2C: func(string) (i2c.BusCloser, error) { return &i2ctest.Playback{DontPanic: true}, nil }}
	for name, cfg := range map[string]sensor.Config{
		"typo in option":  {Driver: DriverName, Options: map[string]any{"shunt_ohm": 0.1}},
		"wrong quantity":  {Driver: DriverName, Quantities: []wire.Quantity{wire.Quantity_QUANTITY_FREQUENCY}},
		"impossible calc": {Driver: DriverName, Options: map[string]any{"shunt_ohms": 10.0}},
	} {
		if _, err := NewSensor(cfg, env); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewSensor(sensor.Config{Driver: DriverName}, sensor.Env{}); err == nil {
		t.Error("nil OpenI2C accepted")
	}
}
