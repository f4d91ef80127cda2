package agent

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridedge/gridedge/edge/clock"
	"github.com/gridedge/gridedge/shared/wire"
)

// group is the channels sampled on one schedule: every channel with the
// same interval. One ticker wakes the whole group; the readings its channels
// take at one tick are appended to the buffer in one write and announced to
// the publisher once, so 8 channels at 1 Hz cost one timer, one buffer write
// and one batch per second instead of eight of each.
type group struct {
	ticker   Ticker
	channels []*channel
}

// groupBySchedule groups channels by interval, in configuration order.
// The ticker of a group is made with the names of its channels joined by
// commas.
func groupBySchedule(channels []*channel, tickers TickerFactory) []*group {
	var out []*group
	byInterval := map[time.Duration]*group{}
	for _, ch := range channels {
		g, ok := byInterval[ch.interval]
		if !ok {
			g = &group{}
			byInterval[ch.interval] = g
			out = append(out, g)
		}
		g.channels = append(g.channels, ch)
	}
	for _, g := range out {
		names := make([]string, len(g.channels))
		for i, ch := range g.channels {
			names[i] = ch.cfg.Channel
		}
		g.ticker = tickers(strings.Join(names, ","), g.channels[0].interval)
	}
	return out
}

// round is one tick of a group: the channels that sense at it and the
// readings they have taken so far.
type round struct {
	st   clock.Stamp
	done chan struct{} // closed when every channel of the round has reported
	mu   sync.Mutex
	left int
	out  []*wire.Reading
	// late is set when the group stopped waiting: channels still sensing
	// append their own readings when they finish.
	late bool
}

// report adds one channel's readings to the round. It returns false when
// the round is no longer waiting and the caller must append them itself.
func (r *round) report(readings []*wire.Reading) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.late {
		return false
	}
	r.out = append(r.out, readings...)
	if r.left--; r.left == 0 {
		close(r.done)
	}
	return true
}

// stopWaiting returns the readings reported so far; later reports are the
// reporters' to append.
func (r *round) stopWaiting() []*wire.Reading {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.late = true
	out := r.out
	r.out = nil
	return out
}

// sampleGroup runs a group until its ticker ends or ctx is done. At each
// tick every idle channel of the group senses: an Instant sensor on the
// group's goroutine, any other on its own goroutine. The group waits for
// all of them and appends their readings in one write, then asks the
// ticker for the next tick (so a simulated schedule never runs ahead of its
// sensors). A channel still sensing after half the interval is left
// behind: the group appends what the others took and goes on, and the slow
// channel appends its own readings when it finishes and skips the ticks
// that pass meanwhile. A hung sensor thus costs only its own samples.
func (a *Agent) sampleGroup(ctx context.Context, g *group) {
	// work is nil for channels sensed on this goroutine.
	work := make([]chan *round, len(g.channels))
	busy := make([]atomic.Bool, len(g.channels))
	lastLogged := make([]time.Time, len(g.channels))
	var lastBoot string
	var wg sync.WaitGroup
	for i, ch := range g.channels {
		if ch.instant {
			continue
		}
		work[i] = make(chan *round, 1)
		wg.Add(1)
		go func() { defer wg.Done(); a.senseLoop(ctx, ch, work[i], &busy[i]) }()
	}
	defer func() {
		for i, w := range work {
			if w != nil {
				close(w)
			} else {
				a.channelDone(g.channels[i], lastBoot)
			}
		}
		wg.Wait()
	}()
	patience := g.channels[0].interval / 2
	for {
		beat := time.Now().UnixNano()
		for i, ch := range g.channels {
			if !busy[i].Load() {
				ch.beat.Store(beat)
			}
		}
		st, err := g.ticker.Next(ctx)
		if err != nil {
			if !errors.Is(err, ErrStopSampling) && ctx.Err() == nil {
				a.log.Error("sampling schedule failed", "channels", len(g.channels), "err", err)
			}
			return
		}
		r := &round{st: st, done: make(chan struct{})}
		var due []int
		for i := range g.channels {
			if busy[i].CompareAndSwap(false, true) {
				due = append(due, i)
			}
		}
		if r.left = len(due); r.left == 0 {
			continue // every channel is still on an earlier tick
		}
		for _, i := range due {
			if work[i] != nil {
				work[i] <- r // never blocks: an idle channel's queue is empty
			}
		}
		for _, i := range due {
			if work[i] == nil {
				readings := a.senseOnce(ctx, g.channels[i], st, &lastLogged[i])
				busy[i].Store(false)
				r.report(readings) // the round is waiting: nothing is late yet
			}
		}
		lastBoot = st.BootID
		a.awaitRound(ctx, r, patience)
	}
}

// channelDone ends a channel's sampling: the aggregation window open when
// sampling ends is summarised, not lost.
func (a *Agent) channelDone(ch *channel, lastBoot string) {
	defer ch.done.Store(true)
	if ch.agg == nil {
		return
	}
	out, err := ch.agg.flush()
	if err != nil {
		a.log.Error("aggregate", "channel", ch.cfg.Channel, "err", err)
	}
	a.appendReadings(lastBoot, out)
}

// awaitRound appends the round's readings once every channel has reported,
// or what has been reported when patience runs out or ctx ends.
func (a *Agent) awaitRound(ctx context.Context, r *round, patience time.Duration) {
	select {
	case <-r.done:
		a.appendReadings(r.st.BootID, r.out)
		return
	default:
	}
	t := time.NewTimer(patience)
	defer t.Stop()
	select {
	case <-r.done:
		a.appendReadings(r.st.BootID, r.out)
	case <-t.C:
		a.appendReadings(r.st.BootID, r.stopWaiting())
	case <-ctx.Done():
		a.appendReadings(r.st.BootID, r.stopWaiting())
	}
}

// senseLoop takes one channel's samples for the rounds it is given, until
// work is closed.
func (a *Agent) senseLoop(ctx context.Context, ch *channel, work <-chan *round, busy *atomic.Bool) {
	var lastBoot string
	defer func() { a.channelDone(ch, lastBoot) }()
	var lastLogged time.Time
	for r := range work {
		ch.beat.Store(time.Now().UnixNano())
		readings := a.senseOnce(ctx, ch, r.st, &lastLogged)
		lastBoot = r.st.BootID
		busy.Store(false)
		if !r.report(readings) {
			a.appendReadings(r.st.BootID, readings)
		}
	}
}

// senseOnce takes one sample of ch at st and returns its readings (after
// aggregation, when the channel aggregates).
func (a *Agent) senseOnce(ctx context.Context, ch *channel, st clock.Stamp, lastLogged *time.Time) []*wire.Reading {
	senseCtx, cancel := context.WithTimeout(withSampleTime(ctx, st), max(ch.interval, time.Second))
	values, err := ch.sensor.Sense(senseCtx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		ch.errors.Add(1)
		a.senseErrors.Add(1)
		// One log line per channel per minute: a dead sensor must not
		// flood the SD card.
		if time.Since(*lastLogged) > time.Minute {
			a.log.Warn("sense failed", "channel", ch.cfg.Channel, "sensor", ch.sensor.String(), "err", err, "errors", ch.errors.Load())
			*lastLogged = time.Now()
		}
	}
	readings := make([]*wire.Reading, 0, len(values))
	for _, v := range values {
		if !ch.cfg.Wants(v.Quantity) {
			continue
		}
		if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) || v.Quantity == wire.Quantity_QUANTITY_UNSPECIFIED {
			ch.errors.Add(1)
			a.senseErrors.Add(1)
			continue
		}
		readings = append(readings, &wire.Reading{
			Channel: ch.cfg.Channel, Quantity: v.Quantity, Value: v.Value,
			WallNs: st.WallNs, MonoNs: st.MonoNs, TimeQuality: st.Quality, TimeErrorNs: st.ErrorNs,
		})
	}
	if ch.agg != nil {
		var err error
		if readings, err = ch.agg.add(st, readings); err != nil {
			a.log.Error("aggregate", "channel", ch.cfg.Channel, "err", err)
		}
	}
	return readings
}

// appendReadings buffers readings of one boot in one write, counts them and
// tells the publisher.
func (a *Agent) appendReadings(bootID string, readings []*wire.Reading) {
	if len(readings) == 0 {
		return
	}
	if err := a.buf.Append(bootID, readings...); err != nil {
		lost := a.appendErrors.Add(uint64(len(readings)))
		// At most one line a minute: a full disk must not also fill the log.
		if now := time.Now().UnixNano(); now-a.appendLoggedAt.Load() > int64(time.Minute) {
			a.appendLoggedAt.Store(now)
			a.log.Error("buffer append failed: readings lost", "err", err, "readings", len(readings), "lost_so_far", lost)
		}
		return
	}
	a.generated.Add(uint64(len(readings)))
	if a.o.hook != nil {
		epoch := a.buf.SeqEpoch()
		for _, r := range readings {
			a.o.hook(a.cfg.DeviceID, epoch, r)
		}
	}
	a.pub.Notify()
}
