package ade7953

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/conntest"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spitest"

	"github.com/gridedge/gridedge/hardware/internal/bustest"
	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/wire"
)

// Set-up traffic: address (2 bytes, MSB first), 0x00 = write, data.
var setup = []conntest.IO{
	{W: []byte{0x00, 0xFE, 0x00, 0xAD}},                                       // unlock key into 0x0FE (8-bit)
	{W: []byte{0x01, 0x20, 0x00, 0x00, 0x30}},                                 // 0x120 (16-bit) = 0x0030
	{W: []byte{0x00, 0x04, 0x00, 0x40}},                                       // LCYCMODE = RSTREAD
	{W: []byte{0x01, 0x20, 0x80, 0x00, 0x00}, R: []byte{0, 0, 0, 0x00, 0x30}}, // read back 0x120
}

// read32 scripts a 32-bit register read: 3 command bytes then 4 data bytes
// clocked out while the host sends zeros.
func read32(reg uint16, v uint32) conntest.IO {
	return conntest.IO{
		W: []byte{byte(reg >> 8), byte(reg), 0x80, 0, 0, 0, 0},
		R: []byte{0, 0, 0, byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)},
	}
}

func read16(reg uint16, v uint16) conntest.IO {
	return conntest.IO{W: []byte{byte(reg >> 8), byte(reg), 0x80, 0, 0}, R: []byte{0, 0, 0, byte(v >> 8), byte(v)}}
}

// Worked example with calibration 0.1 mV, 10 µA and 0.1 mWh per LSB:
//
//	VRMS   (0x31C) 2300000        × 0.0001 V  = 230.0 V
//	IRMSA  (0x31A) 500000         × 0.00001 A = 5.0 A
//	PFA    (0x10A) 0x7999 = 31129 × 2^-15     = 0.949981689453125
//	PERIOD (0x10E) 0x117A = 4474 → 223750 / (4474 + 1) = 50.0 Hz
//	AENERGYA  (0x31E) 10000 × 0.0001 Wh   = 1.0 Wh
//	RENERGYA  (0x320) 3000  × 0.0001 varh = 0.3 varh
//	APENERGYA (0x322) 11000 × 0.0001 VAh  = 1.1 VAh
//
// Over 10 s that is P = 1.0 Wh × 3600 s/h / 10 s = 360 W, Q = 108 var, S = 396 VA.
func senseOps(channel uint16, active uint32) []conntest.IO {
	return []conntest.IO{
		read32(0x31C, 2300000),
		read32(0x31A+channel, 500000),
		read16(0x10A+channel, 0x7999),
		read16(0x10E, 0x117A),
		read32(0x31E+channel, active),
		read32(0x320+channel, 3000),
		read32(0x322+channel, 11000),
	}
}

var cal = Calibration{VoltsPerLSB: 0.0001, AmpsPerLSB: 0.00001, WhPerLSB: 0.0001, VARhPerLSB: 0.0001, VAhPerLSB: 0.0001}

func approx(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestSense(t *testing.T) {
	port := &spitest.Playback{Playback: conntest.Playback{Ops: append(append([]conntest.IO{}, setup...), senseOps(0, 10000)...), DontPanic: true}}
	d, err := New(port, &Opts{Calibration: cal})
	if err != nil {
		t.Fatal(err)
	}
	var m Measurement
	if err := d.Sense(&m); err != nil {
		t.Fatal(err)
	}
	if m.Voltage != 230*physic.Volt || m.Current != 5*physic.Ampere || m.Frequency != 50*physic.Hertz {
		t.Errorf("V, I, f = %v, %v, %v; want 230V, 5A, 50Hz", m.Voltage, m.Current, m.Frequency)
	}
	if m.PowerFactor != 0.949981689453125 || !approx(m.ActiveWh, 1.0) || !approx(m.ReactiveVARh, 0.3) || !approx(m.ApparentVAh, 1.1) {
		t.Errorf("Sense = %+v", m)
	}
	if err := port.Close(); err != nil {
		t.Error(err)
	}
}

func TestChannelBAndExport(t *testing.T) {
	// Channel B registers are A + 1. 0xFFFFFC18 is -1000 (sign-extended
	// 24-bit accumulator): 0.1 Wh exported.
	port := &spitest.Playback{Playback: conntest.Playback{Ops: append(append([]conntest.IO{}, setup...), senseOps(1, 0xFFFFFC18)...), DontPanic: true}}
	d, err := New(port, &Opts{Channel: ChannelB, Calibration: cal})
	if err != nil {
		t.Fatal(err)
	}
	var m Measurement
	if err := d.Sense(&m); err != nil {
		t.Fatal(err)
	}
	if !approx(m.ActiveWh, -0.1) {
		t.Errorf("ActiveWh = %v, want -0.1", m.ActiveWh)
	}
	if d.String() != "ade7953/B" {
		t.Errorf("String = %q", d)
	}
}

func TestRegisterWidths(t *testing.T) {
	for reg, want := range map[uint16]int{0x004: 1, 0x0FE: 1, 0x10E: 2, 0x120: 2, 0x21C: 3, 0x31C: 4, 0x381: 4, 0x702: 1} {
		if got := Width(reg); got != want {
			t.Errorf("Width(0x%03x) = %d, want %d", reg, got, want)
		}
	}
	port := &spitest.Playback{Playback: conntest.Playback{Ops: append(append([]conntest.IO{}, setup...),
		// 24-bit VRMS at 0x21C: 0x23 18 F0 = 2300144.
		conntest.IO{W: []byte{0x02, 0x1C, 0x80, 0, 0, 0}, R: []byte{0, 0, 0, 0x23, 0x18, 0xF0}},
		// 32-bit AVGAIN (0x381) = 0x00400000 (unity gain, the reset value) written MSB first.
		conntest.IO{W: []byte{0x03, 0x81, 0x00, 0x00, 0x40, 0x00, 0x00}},
		// 8-bit VERSION at 0x702.
		conntest.IO{W: []byte{0x07, 0x02, 0x80, 0}, R: []byte{0, 0, 0, 0x01}},
	), DontPanic: true}}
	d, err := New(port, &Opts{Calibration: cal})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := d.ReadRegister(0x21C); err != nil || v != 2300144 {
		t.Errorf("VRMS 24-bit = %d, %v; want 2300144", v, err)
	}
	if err := d.WriteRegister(0x381, 0x400000); err != nil {
		t.Error(err)
	}
	if v, err := d.ReadRegister(0x702); err != nil || v != 1 {
		t.Errorf("VERSION = %d, %v", v, err)
	}
	if err := d.WriteRegister(0x004, 0x100); err == nil {
		t.Error("0x100 written to an 8-bit register")
	}
	if err := port.Close(); err != nil {
		t.Error(err)
	}
}

func TestNoChip(t *testing.T) {
	ops := append([]conntest.IO{}, setup...)
	ops[3] = conntest.IO{W: ops[3].W, R: []byte{0, 0, 0, 0xFF, 0xFF}} // MISO pulled high
	port := &spitest.Playback{Playback: conntest.Playback{Ops: ops, DontPanic: true}}
	if _, err := New(port, &Opts{Calibration: cal}); !errors.Is(err, ErrNoChip) {
		t.Errorf("err = %v, want ErrNoChip", err)
	}
	if _, err := New(&spitest.Playback{}, &Opts{Frequency: 4 * physic.MegaHertz}); err == nil {
		t.Error("4 MHz accepted")
	}
}

// failingPort hands out a connection that fails chosen transfers.
type failingPort struct {
	*spitest.Playback
	fail map[int]error
}

func (p *failingPort) Connect(f physic.Frequency, mode spi.Mode, bits int) (spi.Conn, error) {
	if mode != spi.Mode3 || bits != 8 {
		return nil, errors.New("ADE7953 needs SPI mode 3, 8 bits")
	}
	c, err := p.Playback.Connect(f, mode, bits)
	if err != nil {
		return nil, err
	}
	return &bustest.SPI{Conn: c, Fail: p.fail}, nil
}

func TestTransferErrors(t *testing.T) {
	// Transfer 4 (VRMS) fails once and is retried; then IRMSA fails 3 times.
	play := &spitest.Playback{Playback: conntest.Playback{Ops: append(append([]conntest.IO{}, setup...), read32(0x31C, 2300000)), DontPanic: true}}
	fail := errors.New("spi: transfer failed")
	d, err := New(&failingPort{play, map[int]error{4: fail, 6: fail, 7: fail, 8: fail}}, &Opts{Calibration: cal})
	if err != nil {
		t.Fatal(err)
	}
	var m Measurement
	err = d.Sense(&m)
	if !errors.Is(err, fail) || !strings.Contains(err.Error(), "ade7953: read 0x31a") {
		t.Errorf("err = %v, want failure naming ade7953 register 0x31a", err)
	}
}

func TestSensorEnergyAndPower(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	opts := map[string]any{"port": "SPI0.0", "volts_per_lsb": 0.0001, "amps_per_lsb": 0.00001,
		"wh_per_lsb": 0.0001, "varh_per_lsb": 0.0001, "vah_per_lsb": 0.0001}
	open := func(ops []conntest.IO) sensor.Sensor {
		port := &spitest.Playback{Playback: conntest.Playback{Ops: ops, DontPanic: true}}
		s, err := NewSensor(sensor.Config{Channel: "mains", Driver: DriverName, Options: opts},
			sensor.Env{OpenSPI: func(string) (spi.PortCloser, error) { return port, nil }, StateDir: dir, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ops := append(append(append([]conntest.IO{}, setup...), senseOps(0, 10000)...), senseOps(0, 10000)...)
	s := open(ops)
	first, err := s.Sense(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range first {
		if v.Quantity == wire.Quantity_QUANTITY_ACTIVE_POWER {
			t.Errorf("first Sense has no interval, yet reported power %v", v.Value)
		}
	}
	now = now.Add(10 * time.Second)
	second, err := s.Sense(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[wire.Quantity]float64{
		wire.Quantity_QUANTITY_VOLTAGE:        230,
		wire.Quantity_QUANTITY_CURRENT:        5,
		wire.Quantity_QUANTITY_ACTIVE_POWER:   360,
		wire.Quantity_QUANTITY_REACTIVE_POWER: 108,
		wire.Quantity_QUANTITY_APPARENT_POWER: 396,
		wire.Quantity_QUANTITY_POWER_FACTOR:   0.949981689453125,
		wire.Quantity_QUANTITY_FREQUENCY:      50,
		wire.Quantity_QUANTITY_ENERGY:         2.0, // 1.0 Wh per read, cumulative
	}
	if len(second) != len(want) {
		t.Fatalf("second Sense = %v", second)
	}
	for _, v := range second {
		if !approx(v.Value, want[v.Quantity]) {
			t.Errorf("%s = %v, want %v", v.Quantity.Name(), v.Value, want[v.Quantity])
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart continues the counter from the state directory.
	raw, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil || !strings.Contains(string(raw), `"energy_wh":2`) {
		t.Fatalf("state file = %q, %v", raw, err)
	}
	s = open(append(append([]conntest.IO{}, setup...), senseOps(0, 10000)...))
	again, err := s.Sense(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range again {
		if v.Quantity == wire.Quantity_QUANTITY_ENERGY && !approx(v.Value, 3.0) {
			t.Errorf("energy after restart = %v, want 3.0", v.Value)
		}
	}
}

func TestUncalibratedQuantitiesAreNotReported(t *testing.T) {
	port := &spitest.Playback{Playback: conntest.Playback{Ops: append(append([]conntest.IO{}, setup...), senseOps(0, 10000)...), DontPanic: true}}
	s, err := NewSensor(sensor.Config{Driver: DriverName, Options: map[string]any{"amps_per_lsb": 0.00001}},
		sensor.Env{OpenSPI: func(string) (spi.PortCloser, error) { return port, nil }})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Sense(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range got {
		switch v.Quantity {
		case wire.Quantity_QUANTITY_CURRENT, wire.Quantity_QUANTITY_POWER_FACTOR, wire.Quantity_QUANTITY_FREQUENCY:
		default:
			t.Errorf("uncalibrated %s reported: %v", v.Quantity.Name(), v.Value)
		}
	}
	if len(got) != 3 {
		t.Errorf("got %v, want current, power factor and frequency", got)
	}
}

func TestInstantaneousPower(t *testing.T) {
	// AWATT (0x312) = 1150000 counts × 1 mW = 1150 W, reported from the
	// first Sense; reactive power has only an energy constant, so the first
	// Sense (no interval yet) has none.
	ops := append(append(append([]conntest.IO{}, setup...), senseOps(0, 10000)...), read32(0x312, 1150000))
	port := &spitest.Playback{Playback: conntest.Playback{Ops: ops, DontPanic: true}}
	s, err := NewSensor(sensor.Config{Driver: DriverName, Options: map[string]any{"w_per_lsb": 0.001, "varh_per_lsb": 0.0001},
		Quantities: []wire.Quantity{wire.Quantity_QUANTITY_ACTIVE_POWER, wire.Quantity_QUANTITY_REACTIVE_POWER}},
		sensor.Env{OpenSPI: func(string) (spi.PortCloser, error) { return port, nil }})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Sense(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Quantity != wire.Quantity_QUANTITY_ACTIVE_POWER || !approx(got[0].Value, 1150) {
		t.Errorf("Sense = %v, want active power 1150 W only", got)
	}
	if err := port.Close(); err != nil {
		t.Error(err)
	}
}

func TestSensorConfigErrors(t *testing.T) {
	env := sensor.Env{OpenSPI: func(string) (spi.PortCloser, error) {
		return &spitest.Playback{Playback: conntest.Playback{Ops: setup, DontPanic: true}}, nil
	}}
	for name, cfg := range map[string]sensor.Config{
		"voltage without calibration": {Driver: DriverName, Quantities: []wire.Quantity{wire.Quantity_QUANTITY_VOLTAGE}},
		"channel c":                   {Driver: DriverName, Options: map[string]any{"channel": "c"}},
		"typo":                        {Driver: DriverName, Options: map[string]any{"volt_per_lsb": 1.0}},
		"temperature":                 {Driver: DriverName, Quantities: []wire.Quantity{wire.Quantity_QUANTITY_TEMPERATURE}},
	} {
		if _, err := NewSensor(cfg, env); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
