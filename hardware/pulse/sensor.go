package pulse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/gridedge/gridedge/hardware/internal/drv"
	"github.com/gridedge/gridedge/hardware/internal/state"
	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/wire"
)

// DriverName is the name channels use in the agent configuration.
const DriverName = "pulse"

const stateFile = "pulse-energy.json"

// Options are a channel's driver options.
type Options struct {
	// Pin is the GPIO name as periph knows it, e.g. "GPIO17".
	Pin string `yaml:"pin"`
	// ImpPerKWh is the meter constant (default 1000).
	ImpPerKWh float64 `yaml:"imp_per_kwh"`
	// Edge is "falling" (default) or "rising".
	Edge string `yaml:"edge"`
	// Pull is "up" (default), "down" or "none" (external resistor).
	Pull string `yaml:"pull"`
	// MinSpacingMS is the debounce interval in ms (default 20).
	MinSpacingMS int `yaml:"min_spacing_ms"`
	// PersistEverySeconds bounds how often the counter is written (default 60).
	PersistEverySeconds int `yaml:"persist_every_s"`
}

var offered = []wire.Quantity{wire.Quantity_QUANTITY_ENERGY, wire.Quantity_QUANTITY_ACTIVE_POWER}

// Driver is the registry entry.
func Driver() sensor.Driver {
	return sensor.Driver{Name: DriverName, Summary: "S0 / optical pulse counter on a GPIO: Wh from pulses, W from pulse interval", New: NewSensor, Check: Check}
}

// Check validates a channel's configuration without opening the pin, with
// the rules NewSensor applies.
func Check(cfg sensor.Config) error {
	_, _, err := parse(cfg)
	return err
}

// parse decodes and checks the options; every problem names its option.
func parse(cfg sensor.Config) (Options, *Opts, error) {
	o := Options{PersistEverySeconds: 60}
	if err := cfg.DecodeOptions(&o); err != nil {
		return o, nil, err
	}
	var p drv.Problems
	p.Add(drv.CheckQuantities(cfg, offered...))
	if o.Pin == "" {
		p.Option("pin", "required: the GPIO name, e.g. GPIO17")
	}
	opts := &Opts{ImpPerKWh: o.ImpPerKWh, MinSpacing: time.Duration(o.MinSpacingMS) * time.Millisecond}
	switch strings.ToLower(o.Edge) {
	case "", "falling":
		opts.Edge = gpio.FallingEdge
	case "rising":
		opts.Edge = gpio.RisingEdge
	default:
		p.Option("edge", "must be falling or rising, got %q", o.Edge)
	}
	switch strings.ToLower(o.Pull) {
	case "", "up":
		opts.Pull = gpio.PullUp
	case "down":
		opts.Pull = gpio.PullDown
	case "none":
		opts.Pull = gpio.Float
	default:
		p.Option("pull", "must be up, down or none, got %q", o.Pull)
	}
	if o.ImpPerKWh < 0 || math.IsNaN(o.ImpPerKWh) || math.IsInf(o.ImpPerKWh, 0) {
		p.Option("imp_per_kwh", "must be > 0 (0 = %v), got %v", DefaultImpPerKWh, o.ImpPerKWh)
	}
	if o.MinSpacingMS < 0 {
		p.Option("min_spacing_ms", "must be >= 0 (0 = %v), got %d", DefaultMinSpacing, o.MinSpacingMS)
	}
	if o.PersistEverySeconds < 0 {
		p.Option("persist_every_s", "must be >= 0, got %d", o.PersistEverySeconds)
	}
	return o, opts, p.Err()
}

type persisted struct {
	EnergyWh float64 `json:"energy_wh"`
}

// NewSensor configures the pin and starts counting in the background until
// Close.
func NewSensor(cfg sensor.Config, env sensor.Env) (sensor.Sensor, error) {
	o, opts, err := parse(cfg)
	if err != nil {
		return nil, err
	}
	if env.OpenGPIO == nil {
		return nil, drv.Missing("GPIO")
	}
	now := env.Now
	if now == nil {
		now = time.Now
	}
	pin, err := env.OpenGPIO(o.Pin)
	if err != nil {
		return nil, fmt.Errorf("pulse: open %s: %w", o.Pin, err)
	}
	opts.Now = now
	counter, err := New(pin, opts)
	if err != nil {
		return nil, err
	}
	s := &Sensor{counter: counter, pin: pin, cfg: cfg, now: now, log: drv.Logger(env.Logger),
		persistEvery: time.Duration(o.PersistEverySeconds) * time.Second, done: make(chan struct{})}
	if env.StateDir == "" {
		s.log.Warn("pulse: no state directory: the energy counter restarts from 0 at every start", "channel", cfg.Channel)
	} else {
		s.statePath = filepath.Join(env.StateDir, stateFile)
		var p persisted
		if _, err := state.Load(s.statePath, &p); err != nil {
			return nil, errors.Join(err, pin.Halt())
		}
		s.baseWh = p.EnergyWh
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go func() {
		defer close(s.done)
		_ = counter.Run(ctx)
	}()
	return s, nil
}

// Sensor adapts a Counter to sensor.Sensor.
type Sensor struct {
	counter      *Counter
	pin          gpio.PinIO
	cfg          sensor.Config
	now          func() time.Time
	log          *slog.Logger
	statePath    string
	persistEvery time.Duration
	stop         context.CancelFunc
	done         chan struct{}

	mu        sync.Mutex
	baseWh    float64 // energy persisted before this start
	lastSaved time.Time
	closed    bool
}

func (s *Sensor) energyWh() float64 {
	return s.baseWh + float64(s.counter.Snapshot().Pulses)*s.counter.WhPerPulse()
}

// Sense reports the cumulative energy and, once two pulses have been seen,
// the power. Counting runs in the background; Sense only reads it.
func (s *Sensor) Sense(ctx context.Context) ([]sensor.Value, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	v := drv.NewValues(s.cfg)
	energy := s.energyWh()
	v.Add(wire.Quantity_QUANTITY_ENERGY, energy)
	if p, err := s.counter.Power(now); err == nil {
		v.Add(wire.Quantity_QUANTITY_ACTIVE_POWER, p)
	}
	if s.statePath != "" && now.Sub(s.lastSaved) >= s.persistEvery {
		if err := state.Save(s.statePath, persisted{EnergyWh: energy}); err != nil {
			return v.List(), fmt.Errorf("pulse: persist energy: %w", err)
		}
		s.lastSaved = now
	}
	return v.List(), nil
}

// Stats returns the pulse and debounce counts.
func (s *Sensor) Stats() Snapshot { return s.counter.Snapshot() }

func (s *Sensor) String() string { return fmt.Sprintf("pulse@%s", s.pin) }

// Close stops counting, saves the counter and releases the pin's edge
// detection.
func (s *Sensor) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.stop()
	<-s.done // Run returns within pollEvery
	var err error
	if s.statePath != "" {
		err = state.Save(s.statePath, persisted{EnergyWh: s.energyWh()})
	}
	return errors.Join(err, s.pin.Halt())
}
