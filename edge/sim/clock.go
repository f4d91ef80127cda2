package sim

import (
	"context"
	"sync"
	"time"

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

// trueWall is the simulated wall time of a monotonic stamp.
func (c *Clock) trueWall(monoNs int64) int64 {
	return c.start.Add(time.Duration(monoNs) - monoAtStart).UnixNano()
}

// waitFor blocks until simulated time due has been reached and then extra
// real time more, or ctx ends. Samples keep their scheduled times however
// late the machine takes them.
func (c *Clock) waitFor(ctx context.Context, due, extra time.Duration) error {
	for {
		ahead := time.Duration(float64(due-c.Elapsed())/c.speed) + extra
		if ahead <= 0 {
			return ctx.Err()
		}
		timer := time.NewTimer(max(ahead, 100*time.Microsecond))
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
		if c.Elapsed() >= due {
			// The extra delay was part of this wait.
			return ctx.Err()
		}
	}
}
