package pulse

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Defaults for an S0 output wired between a GPIO and ground.
const (
	DefaultImpPerKWh  = 1000
	DefaultMinSpacing = 20 * time.Millisecond
	// pollEvery bounds how long the counter waits for one edge before it
	// checks whether it should stop.
	pollEvery = 500 * time.Millisecond
)

// Opts configures the counter.
type Opts struct {
	// ImpPerKWh is the meter constant printed on it (imp/kWh); 0 means 1000.
	ImpPerKWh float64
	// Edge that starts a pulse; gpio.NoEdge means gpio.FallingEdge (an S0
	// transistor pulling a pulled-up line to ground).
	Edge gpio.Edge
	// Pull; gpio.PullNoChange means gpio.PullUp.
	Pull gpio.Pull
	// MinSpacing between accepted pulses; 0 means DefaultMinSpacing.
	MinSpacing time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Snapshot is the counter's state at one moment.
type Snapshot struct {
	Pulses    uint64        // accepted pulses since New
	Debounced uint64        // edges rejected as too close to a pulse
	Last      time.Time     // time of the last accepted pulse (zero: none)
	Interval  time.Duration // between the last two accepted pulses (0: fewer than two)
}

// Counter counts pulses on one pin.
type Counter struct {
	pin        gpio.PinIn
	whPerPulse float64
	minSpacing time.Duration
	now        func() time.Time

	mu   sync.Mutex
	snap Snapshot
}

// New configures pin as an input with edge detection.
func New(pin gpio.PinIn, opts *Opts) (*Counter, error) {
	o := *opts
	if o.ImpPerKWh == 0 {
		o.ImpPerKWh = DefaultImpPerKWh
	}
	if o.ImpPerKWh < 0 || math.IsNaN(o.ImpPerKWh) || math.IsInf(o.ImpPerKWh, 0) {
		return nil, fmt.Errorf("pulse: imp/kWh %v must be positive", o.ImpPerKWh)
	}
	if o.Edge == gpio.NoEdge {
		o.Edge = gpio.FallingEdge
	}
	if o.Pull == gpio.PullNoChange {
		o.Pull = gpio.PullUp
	}
	if o.MinSpacing == 0 {
		o.MinSpacing = DefaultMinSpacing
	}
	if o.MinSpacing < 0 {
		return nil, fmt.Errorf("pulse: minimum spacing %v is negative", o.MinSpacing)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := pin.In(o.Pull, o.Edge); err != nil {
		return nil, fmt.Errorf("pulse: pin %s: enable %s edge detection: %w", pin, o.Edge, err)
	}
	return &Counter{pin: pin, whPerPulse: 1000 / o.ImpPerKWh, minSpacing: o.MinSpacing, now: o.Now}, nil
}

// WhPerPulse is the energy one pulse stands for.
func (c *Counter) WhPerPulse() float64 { return c.whPerPulse }

// Run counts edges until ctx is done, then returns ctx.Err(). Call it once.
func (c *Counter) Run(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if c.pin.WaitForEdge(pollEvery) {
			c.edge(c.now())
		}
	}
}

// edge records one detected edge at t.
func (c *Counter) edge(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.snap
	if !s.Last.IsZero() {
		since := t.Sub(s.Last)
		if since < c.minSpacing {
			s.Debounced++
			return
		}
		s.Interval = since
	}
	s.Last = t
	s.Pulses++
}

// Snapshot returns the counter's state.
func (c *Counter) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snap
}

// ErrNoPower: fewer than two pulses seen, so no interval to derive power from.
var ErrNoPower = errors.New("pulse: no power yet (fewer than two pulses)")

// Power is the power at time now in W: from the last interval, but never
// more than one pulse in the time since the last pulse (see package doc).
func (c *Counter) Power(now time.Time) (float64, error) {
	s := c.Snapshot()
	if s.Interval <= 0 {
		return 0, ErrNoPower
	}
	p := c.whPerPulse * 3600 / s.Interval.Seconds()
	if since := now.Sub(s.Last); since > s.Interval {
		p = c.whPerPulse * 3600 / since.Seconds()
	}
	return p, nil
}

// Halt implements conn.Resource; counting stops when Run's ctx is done.
func (c *Counter) Halt() error { return nil }
