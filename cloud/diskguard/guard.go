package diskguard

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridedge/gridedge/shared/diskfree"
)

// ErrLowSpace is wrapped by Check's error when the free space is below the
// reserve.
var ErrLowSpace = errors.New("diskguard: free space below the reserve")

// Option changes a Guard.
type Option func(*Guard)

// WithLogger sets the logger for state changes (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(g *Guard) { g.log = l } }

// WithInterval sets how long a free-space reading is reused (default 1 s).
func WithInterval(d time.Duration) Option { return func(g *Guard) { g.interval = d } }

// WithFreeFunc replaces the statfs reading (for tests).
func WithFreeFunc(f func(dir string) (int64, error)) Option { return func(g *Guard) { g.free = f } }

// Guard watches the free space of one file system. It is safe for
// concurrent use.
type Guard struct {
	dir      string
	reserve  int64
	interval time.Duration
	free     func(string) (int64, error)
	log      *slog.Logger

	mu        sync.Mutex
	readAt    time.Time
	last      int64
	low       bool
	loggedAt  time.Time
	refusals  uint64
	sinceLow  uint64
	lowEvents uint64
}

// New returns a Guard keeping reserve bytes free on the file system of dir.
// A reserve of 0 or less disables it (Check never fails).
func New(dir string, reserve int64, opts ...Option) *Guard {
	g := &Guard{dir: dir, reserve: reserve, interval: time.Second, free: diskfree.Available, log: slog.Default(), last: math.MaxInt64}
	for _, o := range opts {
		o(g)
	}
	return g
}

// Reserve is the configured reserve in bytes.
func (g *Guard) Reserve() int64 { return g.reserve }

// refresh reads the free space when the last reading is older than the
// interval; g.mu is held.
func (g *Guard) refresh() {
	if g.reserve <= 0 {
		return
	}
	now := time.Now()
	if !g.readAt.IsZero() && now.Sub(g.readAt) < g.interval {
		return
	}
	g.readAt = now
	free, err := g.free(g.dir)
	if err != nil {
		// Cannot tell: do not refuse data on a guess.
		g.log.Warn("cannot read the free space of the data directory", "dir", g.dir, "err", err)
		free = math.MaxInt64
	}
	g.last = free
	switch low := free < g.reserve; {
	case low && !g.low:
		g.low, g.sinceLow = true, 0
		g.lowEvents++
		if now.Sub(g.loggedAt) >= time.Minute {
			g.loggedAt = now
			g.log.Error("free space below the reserve: new batches are refused (not acknowledged; agents keep and resend them) until space returns",
				"dir", g.dir, "free_bytes", free, "reserve_bytes", g.reserve)
		}
	case !low && g.low:
		g.low = false
		g.log.Info("free space above the reserve again: accepting batches", "dir", g.dir, "free_bytes", free,
			"reserve_bytes", g.reserve, "refused_meanwhile", g.sinceLow)
	}
}

// Check returns an error wrapping ErrLowSpace while the free space is below
// the reserve, and counts the refusal.
func (g *Guard) Check() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refresh()
	if !g.low {
		return nil
	}
	g.refusals++
	g.sinceLow++
	return fmt.Errorf("%w: %d bytes free on %s, %d reserved", ErrLowSpace, g.last, g.dir, g.reserve)
}

// CanWrite reports whether the free space is at least half the reserve
// (the write floor): below it, nothing but deletions should be written.
func (g *Guard) CanWrite() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refresh()
	return g.reserve <= 0 || g.last >= g.reserve/2
}

// Health returns nil, or why the collector is not accepting data.
func (g *Guard) Health() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refresh()
	if !g.low {
		return nil
	}
	return fmt.Errorf("disk: %d bytes free on %s, below the %d-byte reserve: batches are refused until space returns", g.last, g.dir, g.reserve)
}

// Stats is a snapshot of the guard.
type Stats struct {
	FreeBytes int64 // last reading (math.MaxInt64 when disabled or unknown)
	Low       bool
	Refusals  uint64 // Check calls that failed, since start
	LowEvents uint64 // times the free space fell below the reserve
}

// Stats refreshes the reading if stale and returns the counters.
func (g *Guard) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refresh()
	return Stats{FreeBytes: g.last, Low: g.low, Refusals: g.refusals, LowEvents: g.lowEvents}
}

// Metrics returns the guard's Prometheus collectors (evaluated at scrape
// time, so a scrape refreshes a stale reading).
func (g *Guard) Metrics() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gridedge_collector_disk_free_bytes",
			Help: "Free space on the data directory's file system (at the last reading)."}, func() float64 {
			if s := g.Stats(); s.FreeBytes != math.MaxInt64 {
				return float64(s.FreeBytes)
			}
			return -1
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gridedge_collector_disk_reserve_bytes",
			Help: "Free space the collector keeps (min_free_bytes); below it batches are refused."}, func() float64 { return float64(g.reserve) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gridedge_collector_disk_low",
			Help: "1 while the free space is below the reserve and batches are refused."}, func() float64 {
			if g.Stats().Low {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gridedge_collector_disk_refusals_total",
			Help: "Payloads refused (not acknowledged) because the free space was below the reserve."}, func() float64 {
			g.mu.Lock()
			defer g.mu.Unlock()
			return float64(g.refusals)
		}),
	}
}
