package sim

import (
	"context"
	"sync"
	"time"

	"github.com/gridedge/gridedge/edge/agent"
	"github.com/gridedge/gridedge/edge/clock"
	"github.com/gridedge/gridedge/shared/wire"
)

// monoAtStart is the simulated CLOCK_BOOTTIME when the simulation starts:
// as if every virtual gateway booted a minute earlier.
const monoAtStart = time.Minute

// Clock is a clock.Source on simulated time: wall = start + speed × real
// time elapsed since Begin. It is always synced, so Correct changes nothing.
type Clock struct {
	start  time.Time
	speed  float64
	bootID string

	mu        sync.Mutex
	realStart time.Time
}

var _ clock.Source = (*Clock)(nil)

// NewClock returns a clock that stands at start until Begin.
func NewClock(start time.Time, speed float64, bootID string) *Clock {
	return &Clock{start: start, speed: speed, bootID: bootID}
}

// Begin starts simulated time running.
func (c *Clock) Begin() {
	c.mu.Lock()
	c.realStart = time.Now()
	c.mu.Unlock()
}

// Elapsed is the simulated time since start.
func (c *Clock) Elapsed() time.Duration {
	c.mu.Lock()
	rs := c.realStart
	c.mu.Unlock()
	if rs.IsZero() {
		return 0
	}
	return time.Duration(float64(time.Since(rs)) * c.speed)
}

func (c *Clock) stamp(sim time.Duration) clock.Stamp {
	return clock.Stamp{BootID: c.bootID, MonoNs: int64(monoAtStart + sim), WallNs: c.start.Add(sim).UnixNano(),
		Quality: wire.TimeQuality_TIME_QUALITY_SYNCED}
}

// Now stamps the present simulated moment.
func (c *Clock) Now() clock.Stamp { return c.stamp(c.Elapsed()) }

// Correct returns s: simulated time is always synced.
func (c *Clock) Correct(s clock.Stamp) clock.Stamp { return s }

// Quality is always synced.
func (c *Clock) Quality() wire.TimeQuality { return wire.TimeQuality_TIME_QUALITY_SYNCED }

// Tickers returns the agent's sampling schedule on this clock: samples at
// exact multiples of the interval (in Unix time) from start up to, not
// including, end. A sample's stamp is its scheduled time exactly, so the
// truth file and the readings agree to the nanosecond; when the machine
// falls behind, samples are taken late in real time but keep their times.
func (c *Clock) Tickers(end time.Time) agent.TickerFactory {
	return func(_ string, interval time.Duration) agent.Ticker {
		first := c.start.Truncate(interval)
		if first.Before(c.start) {
			first = first.Add(interval)
		}
		return &ticker{c: c, next: first, interval: interval, end: end}
	}
}

type ticker struct {
	c        *Clock
	next     time.Time
	interval time.Duration
	end      time.Time
}

func (t *ticker) Next(ctx context.Context) (clock.Stamp, error) {
	if !t.next.Before(t.end) {
		return clock.Stamp{}, agent.ErrStopSampling
	}
	due := t.next.Sub(t.c.start)
	for {
		ahead := due - t.c.Elapsed()
		if ahead <= 0 {
			break
		}
		wait := time.Duration(float64(ahead) / t.c.speed)
		timer := time.NewTimer(max(wait, 100*time.Microsecond))
		select {
		case <-ctx.Done():
			timer.Stop()
			return clock.Stamp{}, ctx.Err()
		case <-timer.C:
		}
	}
	if err := ctx.Err(); err != nil {
		return clock.Stamp{}, err
	}
	t.next = t.next.Add(t.interval)
	return t.c.stamp(due), nil
}
