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
// time elapsed since Begin, but never later than the real wall clock: a
// run that starts in the past catches up at speed and then follows the
// present at real time, so no reading is ever stamped in the future. It is
// always synced, so Correct changes nothing.
type Clock struct {
	start  time.Time
	speed  float64
	bootID string
	// now is the real clock (time.Now; a test's fake).
	now func() time.Time

	mu        sync.Mutex
	realStart time.Time
}

var _ clock.Source = (*Clock)(nil)

// NewClock returns a clock that stands at start until Begin.
func NewClock(start time.Time, speed float64, bootID string) *Clock {
	return &Clock{start: start, speed: speed, bootID: bootID, now: time.Now}
}

// Begin starts simulated time running.
func (c *Clock) Begin() {
	c.mu.Lock()
	c.realStart = c.now()
	c.mu.Unlock()
}

// Elapsed is the simulated time since start: speed × the real time since
// Begin, at most the real time from start to now (never negative).
func (c *Clock) Elapsed() time.Duration {
	c.mu.Lock()
	rs := c.realStart
	c.mu.Unlock()
	if rs.IsZero() {
		return 0
	}
	now := c.now()
	e := min(time.Duration(float64(now.Sub(rs))*c.speed), now.Sub(c.start))
	return max(e, 0)
}

// Live reports whether simulated time has caught up with the present and
// runs at real time.
func (c *Clock) Live() bool {
	c.mu.Lock()
	rs := c.realStart
	c.mu.Unlock()
	if rs.IsZero() {
		return false
	}
	now := c.now()
	return time.Duration(float64(now.Sub(rs))*c.speed) >= now.Sub(c.start)
}

// untilDue is the real time until Elapsed reaches due.
func (c *Clock) untilDue(due time.Duration) time.Duration {
	c.mu.Lock()
	rs := c.realStart
	c.mu.Unlock()
	now := c.now()
	if rs.IsZero() {
		rs = now
	}
	atSpeed := time.Duration(float64(due)/c.speed) - now.Sub(rs)
	return max(atSpeed, c.start.Add(due).Sub(now))
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
		ahead := c.untilDue(due) + extra
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
