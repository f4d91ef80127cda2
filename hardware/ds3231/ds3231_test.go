package ds3231

import (
	"errors"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"

	"github.com/gridedge/gridedge/hardware/internal/bustest"
)

const addr = 0x68

var (
	opControlOK = i2ctest.IO{Addr: addr, W: []byte{0x0E}, R: []byte{0x1C}} // power-on value: INTCN, RS2, RS1; EOSC clear
	opStatusOK  = i2ctest.IO{Addr: addr, W: []byte{0x0F}, R: []byte{0x08}} // EN32kHz only
	opStatusOSF = i2ctest.IO{Addr: addr, W: []byte{0x0F}, R: []byte{0x88}} // OSF | EN32kHz (power-on)
)

func newDev(t *testing.T, ops ...i2ctest.IO) (*Dev, *i2ctest.Playback) {
	t.Helper()
	bus := &i2ctest.Playback{Ops: append([]i2ctest.IO{opControlOK}, ops...), DontPanic: true}
	d, err := New(bus, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d, bus
}

func TestTime(t *testing.T) {
	// 2026-11-23 01:45:30 UTC, a Monday (day register 2 with 1 = Sunday):
	// seconds 0x30, minutes 0x45, hours 0x01 (24 h), day 0x02, date 0x23,
	// month 0x11 (century bit clear → 20xx), year 0x26.
	d, bus := newDev(t, opStatusOK, i2ctest.IO{Addr: addr, W: []byte{0x00}, R: []byte{0x30, 0x45, 0x01, 0x02, 0x23, 0x11, 0x26}})
	got, err := d.Time()
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 23, 1, 45, 30, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Time = %v, want %v", got, want)
	}
	if err := bus.Close(); err != nil {
		t.Error(err)
	}
}

func TestTimeInvalidWhenOscillatorStopped(t *testing.T) {
	d, bus := newDev(t, opStatusOSF) // the time registers must not even be read
	if _, err := d.Time(); !errors.Is(err, ErrTimeInvalid) {
		t.Fatalf("err = %v, want ErrTimeInvalid", err)
	}
	if err := bus.Close(); err != nil {
		t.Error(err)
	}
}

func TestDecodeTime(t *testing.T) {
	for _, tc := range []struct {
		name string
		regs []byte
		want time.Time
	}{
		// Hours 0x72 = 12-hour mode (bit 6) | PM (bit 5) | 10 (bit 4) | 2 → 12 PM = 12:00.
		{"12 PM", []byte{0x00, 0x00, 0x72, 0x01, 0x01, 0x01, 0x25}, time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)},
		// 0x52 = 12-hour | AM | 10 | 2 → 12 AM = 00:00.
		{"12 AM", []byte{0x00, 0x00, 0x52, 0x01, 0x01, 0x01, 0x25}, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
		// 0x69 = 12-hour | PM | 9 → 21:00.
		{"9 PM", []byte{0x00, 0x00, 0x69, 0x01, 0x01, 0x01, 0x25}, time.Date(2025, 1, 1, 21, 0, 0, 0, time.UTC)},
		// 24-hour 0x23 = 23 h (the 20-hour bit 5 set).
		{"23 h", []byte{0x59, 0x59, 0x23, 0x04, 0x31, 0x12, 0x99}, time.Date(2099, 12, 31, 23, 59, 59, 0, time.UTC)},
		// Month 0x81: century bit and January; year 0x00 → 2100.
		{"century", []byte{0x00, 0x00, 0x00, 0x06, 0x01, 0x81, 0x00}, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"leap day", []byte{0x00, 0x00, 0x00, 0x05, 0x29, 0x02, 0x28}, time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC)},
	} {
		got, err := DecodeTime(tc.regs)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("%s: DecodeTime(% x) = %v, %v; want %v", tc.name, tc.regs, got, err, tc.want)
		}
	}
	for name, regs := range map[string][]byte{
		"seconds 0x7A (not BCD)":  {0x7A, 0x00, 0x00, 0x01, 0x01, 0x01, 0x25},
		"minutes 60":              {0x00, 0x60, 0x00, 0x01, 0x01, 0x01, 0x25},
		"hours 24":                {0x00, 0x00, 0x24, 0x01, 0x01, 0x01, 0x25},
		"12-hour 0":               {0x00, 0x00, 0x40, 0x01, 0x01, 0x01, 0x25},
		"day 0":                   {0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x25},
		"month 13":                {0x00, 0x00, 0x00, 0x01, 0x01, 0x13, 0x25},
		"30 February":             {0x00, 0x00, 0x00, 0x01, 0x30, 0x02, 0x25},
		"all ones (floating bus)": {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
		"short":                   {0x00},
	} {
		if _, err := DecodeTime(regs); !errors.Is(err, ErrImplausible) {
			t.Errorf("%s: err = %v, want ErrImplausible", name, err)
		}
	}
}

func TestSetTimeClearsOSF(t *testing.T) {
	// 2026-11-23 01:45:30.9 +01:00 is 00:45:30 UTC; fractions are dropped.
	at := time.Date(2026, 11, 23, 1, 45, 30, 900_000_000, time.FixedZone("CET", 3600))
	d, bus := newDev(t,
		i2ctest.IO{Addr: addr, W: []byte{0x00, 0x30, 0x45, 0x00, 0x02, 0x23, 0x11, 0x26}},
		opStatusOSF,
		i2ctest.IO{Addr: addr, W: []byte{0x0F, 0x08}}, // OSF cleared, EN32kHz kept
		opStatusOK,
		i2ctest.IO{Addr: addr, W: []byte{0x00}, R: []byte{0x30, 0x45, 0x00, 0x02, 0x23, 0x11, 0x26}},
	)
	if err := d.SetTime(at); err != nil {
		t.Fatal(err)
	}
	got, err := d.Time()
	if err != nil {
		t.Fatal(err)
	}
	if want := at.Truncate(time.Second); !got.Equal(want) {
		t.Errorf("Time after SetTime = %v, want %v", got, want)
	}
	if err := bus.Close(); err != nil {
		t.Error(err)
	}
	if _, err := EncodeTime(time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Error("1999 encoded")
	}
	regs, err := EncodeTime(time.Date(2150, 6, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || regs[5] != 0x86 || regs[6] != 0x50 {
		t.Errorf("2150-06: month 0x%02x year 0x%02x, want 0x86 (century|6) 0x50 (%v)", regs[5], regs[6], err)
	}
}

func TestTemperature(t *testing.T) {
	d, _ := newDev(t,
		// 0x19 0x40: 25 + 1 quarter = 25.25 °C.
		i2ctest.IO{Addr: addr, W: []byte{0x11}, R: []byte{0x19, 0x40}},
		// 0xE6 0xC0: 0xE6C0 >> 6 = -101 quarters (10-bit two's complement) = -25.25 °C.
		i2ctest.IO{Addr: addr, W: []byte{0x11}, R: []byte{0xE6, 0xC0}},
	)
	got, err := d.Temperature()
	if err != nil || got.Celsius() != 25.25 {
		t.Errorf("Temperature = %v (%v °C), %v; want 25.25 °C", got, got.Celsius(), err)
	}
	var e physic.Env
	if err := d.Sense(&e); err != nil || e.Temperature.Celsius() != -25.25 {
		t.Errorf("Sense temperature = %v °C, %v; want -25.25 °C", e.Temperature.Celsius(), err)
	}
}

func TestEnablesOscillator(t *testing.T) {
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{
		{Addr: addr, W: []byte{0x0E}, R: []byte{0x9C}}, // EOSC set: would stop on battery
		{Addr: addr, W: []byte{0x0E, 0x1C}},
	}, DontPanic: true}
	if _, err := New(bus, nil); err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Error(err)
	}
}

func TestNACK(t *testing.T) {
	play := &i2ctest.Playback{DontPanic: true}
	bus := &bustest.I2C{BusCloser: play, Fail: map[int]error{0: bustest.ErrNACK, 1: bustest.ErrNACK, 2: bustest.ErrNACK}}
	_, err := Open(func(string) (i2c.BusCloser, error) { return bus, nil }, "1", nil)
	if !errors.Is(err, bustest.ErrNACK) || !strings.Contains(err.Error(), "ds3231") || !strings.Contains(err.Error(), "control (0x0e)") {
		t.Errorf("err = %v, want NACK naming ds3231 control (0x0e)", err)
	}
}
