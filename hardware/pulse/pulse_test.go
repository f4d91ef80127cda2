package pulse

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/poll"
	"github.com/gridedge/gridedge/shared/wire"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestPowerFromInterval(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO17", EdgesChan: make(chan gpio.Level)}
	c, err := New(pin, &Opts{ImpPerKWh: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if pin.Pull() != gpio.PullUp {
		t.Errorf("pull = %s, want up (default for S0 to ground)", pin.Pull())
	}
	if _, err := c.Power(t0); !errors.Is(err, ErrNoPower) {
		t.Errorf("no pulses: err = %v, want ErrNoPower", err)
	}
	c.edge(t0)
	c.edge(t0.Add(5 * time.Millisecond)) // bounce: inside the 20 ms spacing
	c.edge(t0.Add(3600 * time.Millisecond))
	s := c.Snapshot()
	if s.Pulses != 2 || s.Debounced != 1 || s.Interval != 3600*time.Millisecond {
		t.Fatalf("snapshot = %+v, want 2 pulses, 1 debounced, 3.6 s interval", s)
	}
	for _, tc := range []struct {
		at   time.Duration
		want float64
	}{
		// 1000 imp/kWh: 1 Wh per pulse. P = 3600 / (1000/1000 × 3.6 s) = 1000 W.
		{3600 * time.Millisecond, 1000},
		// Still inside one interval after the last pulse: unchanged.
		{7 * time.Second, 1000},
		// 32.4 s without a pulse: at most 1 Wh in 32.4 s = 3600/32.4 = 111.11 W.
		{36 * time.Second, 3600 / 32.4},
		// An hour later: at most 1 Wh in 3596.4 s ≈ 1.001 W, decaying to 0.
		{time.Hour, 3600 / 3596.4},
	} {
		got, err := c.Power(t0.Add(tc.at))
		if err != nil || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("Power at +%v = %v, %v; want %v", tc.at, got, err, tc.want)
		}
	}

	// 800 imp/kWh (1.25 Wh per pulse), 2 s apart: P = 3600 / (0.8 × 2) = 2250 W.
	c, err = New(pin, &Opts{ImpPerKWh: 800})
	if err != nil {
		t.Fatal(err)
	}
	c.edge(t0)
	c.edge(t0.Add(2 * time.Second))
	if got, _ := c.Power(t0.Add(2 * time.Second)); math.Abs(got-2250) > 1e-9 {
		t.Errorf("800 imp/kWh: P = %v, want 2250", got)
	}
}

func TestBadOpts(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO17", EdgesChan: make(chan gpio.Level)}
	if _, err := New(pin, &Opts{ImpPerKWh: -1}); err == nil {
		t.Error("negative imp/kWh accepted")
	}
	if _, err := New(&gpiotest.Pin{N: "GPIO4"}, &Opts{}); err == nil {
		t.Error("pin without edge support accepted")
	}
}

// waitFor polls the counter until cond holds; the background goroutine
// handles each edge after the test's send returns.
func waitFor(t *testing.T, s *Sensor, what string, cond func(Snapshot) bool) {
	t.Helper()
	poll.For(t, 20*time.Second, what, func() (Snapshot, error) { return s.Stats(), nil }, cond)
}

func TestSensorCountsPersistsAndResumes(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: t0}
	pin := &gpiotest.Pin{N: "GPIO17", EdgesChan: make(chan gpio.Level)}
	env := sensor.Env{OpenGPIO: func(name string) (gpio.PinIO, error) {
		if name != "GPIO17" {
			t.Errorf("opened %q", name)
		}
		return pin, nil
	}, StateDir: dir, Now: clock.Now}
	cfg := sensor.Config{Channel: "meter", Driver: DriverName, Options: map[string]any{"pin": "GPIO17", "imp_per_kwh": 1000}}
	raw, err := NewSensor(cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	s := raw.(*Sensor)

	pin.EdgesChan <- gpio.Low
	waitFor(t, s, "first pulse", func(n Snapshot) bool { return n.Pulses == 1 })
	clock.Set(t0.Add(5 * time.Millisecond))
	pin.EdgesChan <- gpio.Low
	waitFor(t, s, "bounce", func(n Snapshot) bool { return n.Debounced == 1 })
	clock.Set(t0.Add(3600 * time.Millisecond))
	pin.EdgesChan <- gpio.Low
	waitFor(t, s, "second pulse", func(n Snapshot) bool { return n.Pulses == 2 })

	got, err := s.Sense(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []sensor.Value{{Quantity: wire.Quantity_QUANTITY_ENERGY, Value: 2}, {Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: 1000}}
	if len(got) != 2 || got[0] != want[0] || math.Abs(got[1].Value-1000) > 1e-9 {
		t.Errorf("Sense = %v, want %v", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil || !strings.Contains(string(data), `"energy_wh":2`) {
		t.Fatalf("state = %q, %v", data, err)
	}

	// After a reboot the counter resumes at 2 Wh; no power until two new pulses.
	raw, err = NewSensor(cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	got, err = raw.Sense(context.Background())
	if err != nil || len(got) != 1 || got[0].Value != 2 {
		t.Errorf("after restart Sense = %v, %v; want energy 2 only", got, err)
	}
}

func TestSensorConfigErrors(t *testing.T) {
	env := sensor.Env{OpenGPIO: func(string) (gpio.PinIO, error) {
		return &gpiotest.Pin{N: "GPIO17", EdgesChan: make(chan gpio.Level)}, nil
	}, StateDir: t.TempDir()}
	for name, opts := range map[string]map[string]any{
		"no pin":       {},
		"edge both":    {"pin": "GPIO17", "edge": "both"},
		"pull sideway": {"pin": "GPIO17", "pull": "sideways"},
		"typo":         {"pin": "GPIO17", "imp_kwh": 1000},
	} {
		if _, err := NewSensor(sensor.Config{Driver: DriverName, Options: opts}, env); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := os.WriteFile(filepath.Join(env.StateDir, stateFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSensor(sensor.Config{Driver: DriverName, Options: map[string]any{"pin": "GPIO17"}}, env); err == nil {
		t.Error("damaged counter file accepted (the counter would silently restart from 0)")
	}
}
