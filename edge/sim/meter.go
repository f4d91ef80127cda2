package sim

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridedge/gridedge/edge/agent"
	"github.com/gridedge/gridedge/edge/clock"
	"github.com/gridedge/gridedge/edge/sim/household"
	"github.com/gridedge/gridedge/shared/wire"
)

// meterClock is one meter's view of the simulated clock: the fleet's clock,
// except that a meter booting without a clock (FaultClockless) stamps from a
// wall clock that starts at the Unix epoch at boot until its clock syncs.
type meterClock struct {
	c      *Clock
	syncAt time.Duration // simulated time since the run's start; 0: synced from boot
	// state records the sample times taken (nil: not recorded).
	state *meterState
}

var _ clock.Source = (*meterClock)(nil)

func (m *meterClock) stamp(sim time.Duration) clock.Stamp {
	st := m.c.stamp(sim)
	if sim < m.syncAt {
		// No RTC, no network: the kernel's wall clock counts from 1970.
		st.WallNs, st.Quality, st.ErrorNs = st.MonoNs, wire.TimeQuality_TIME_QUALITY_ESTIMATED, clock.ErrorUnbounded
	}
	return st
}

// sampling records a sample time in the meter's state.
func (m *meterClock) sampling(at time.Time) error {
	if m.state == nil {
		return nil
	}
	return m.state.sampling(at)
}

func (m *meterClock) Now() clock.Stamp { return m.stamp(m.c.Elapsed()) }

// Correct re-stamps a reading taken before sync once the clock has synced:
// wall = monotonic + the offset learned at sync, exact in the simulation.
func (m *meterClock) Correct(st clock.Stamp) clock.Stamp {
	if m.syncAt == 0 || st.BootID != m.c.bootID || st.Quality != wire.TimeQuality_TIME_QUALITY_ESTIMATED ||
		m.c.Elapsed() < m.syncAt {
		return st
	}
	st.WallNs, st.Quality, st.ErrorNs = m.c.trueWall(st.MonoNs), wire.TimeQuality_TIME_QUALITY_CORRECTED, 0
	return st
}

func (m *meterClock) Quality() wire.TimeQuality { return m.Now().Quality }

// tickers is the meter's sampling schedule: every channel samples at exact
// multiples of its interval from the meter's start (born) up to end; each
// sample's reading is delayed by the jitter, and with probability
// reversedPairs a sample and the next are taken in reverse order.
func (m *meterClock) tickers(born time.Duration, end time.Time, jitter Jitter, reversedPairs float64, seed uint64) agent.TickerFactory {
	return func(channel string, interval time.Duration) agent.Ticker {
		from := m.c.start.Add(born)
		first := from.Truncate(interval)
		if first.Before(from) {
			first = first.Add(interval)
		}
		h := seed
		for _, b := range []byte(channel) {
			h = household.Mix(h ^ uint64(b))
		}
		return &ticker{m: m, next: first, interval: interval, end: end, jitter: jitter, reverse: reversedPairs,
			rng: rand.New(rand.NewPCG(seed, h))}
	}
}

type ticker struct {
	m        *meterClock
	next     time.Time
	interval time.Duration
	end      time.Time
	jitter   Jitter
	reverse  float64
	rng      *rand.Rand
	// held is the earlier sample of a reversed pair, due right after the
	// later one.
	held *time.Time
}

func (t *ticker) delay() time.Duration {
	j := t.jitter
	d := j.Min
	if j.Max > j.Min {
		d += time.Duration(t.rng.Int64N(int64(j.Max-j.Min) + 1))
	}
	d += j.ExtraMin
	if j.ExtraMax > j.ExtraMin {
		d += time.Duration(t.rng.Int64N(int64(j.ExtraMax-j.ExtraMin) + 1))
	}
	return d
}

func (t *ticker) Next(ctx context.Context) (clock.Stamp, error) {
	if t.held != nil {
		at := *t.held
		t.held = nil
		if err := t.m.sampling(at); err != nil {
			return clock.Stamp{}, err
		}
		return t.m.stamp(at.Sub(t.m.c.start)), nil
	}
	if !t.next.Before(t.end) {
		return clock.Stamp{}, agent.ErrStopSampling
	}
	at := t.next
	t.next = t.next.Add(t.interval)
	if t.reverse > 0 && t.next.Before(t.end) && t.rng.Float64() < t.reverse {
		// Take the next sample first and this one right after it.
		held := at
		t.held = &held
		at = t.next
		t.next = t.next.Add(t.interval)
	}
	due := at.Sub(t.m.c.start)
	if err := t.m.c.waitFor(ctx, due, t.delay()); err != nil {
		t.held = nil
		return clock.Stamp{}, err
	}
	if err := t.m.sampling(at); err != nil {
		t.held = nil
		return clock.Stamp{}, err
	}
	return t.m.stamp(due), nil
}

// link is one meter's network path to the broker: it dials from the
// meter's source address, refuses while the meter's network is down, and
// can cut the open connection.
type link struct {
	c      *Clock
	faults *meterFaults
	local  netip.Addr
	open   *atomic.Int64 // connections open, fleet-wide

	mu   sync.Mutex
	conn net.Conn
}

var errNetworkDown = errors.New("simulated network outage")

func (l *link) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if l.faults.isDown(l.c.Elapsed()) {
		return nil, errNetworkDown
	}
	var d net.Dialer
	if l.local.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: l.local.AsSlice()}
	}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: conn, open: l.open}
	l.open.Add(1)
	l.mu.Lock()
	l.conn = tc
	l.mu.Unlock()
	return tc, nil
}

// cut closes the open connection, as a network failure would.
func (l *link) cut() {
	l.mu.Lock()
	c := l.conn
	l.conn = nil
	l.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// trackedConn counts itself out of the open connections once closed.
type trackedConn struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.open.Add(-1) })
	return err
}

// ackQueue holds the real generation times of a meter's readings not yet
// acked, oldest first, to measure the end-to-end ack latency: an ack
// deleting n readings completes the n oldest (acks come in sequence order
// except after resends, where the figure is approximate).
type ackQueue struct {
	mu sync.Mutex
	q  []int64
	h  int
}

func (a *ackQueue) push(ns int64) {
	a.mu.Lock()
	a.q = append(a.q, ns)
	a.mu.Unlock()
}

func (a *ackQueue) pop(n int, now int64, h *histogram) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n = min(n, len(a.q)-a.h)
	for _, g := range a.q[a.h : a.h+n] {
		h.add(time.Duration(now - g))
	}
	a.h += n
	if a.h == len(a.q) {
		a.q, a.h = a.q[:0], 0
	} else if a.h > 64 && a.h > len(a.q)/2 {
		a.q = append(a.q[:0], a.q[a.h:]...)
		a.h = 0
	}
}
