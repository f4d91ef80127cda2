package fleet

import (
	"cmp"
	"container/heap"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Device is what the summary needs to know of one device.
type Device struct {
	ID, Site string
	// LastContact is the last time the collector heard from the device
	// (a batch or a status), in the collector's clock; zero when never.
	LastContact time.Time
	// HasStatus says a status was received; Online is what it said (false
	// after a clean stop or the broker's last will).
	HasStatus, Online bool
	// ClockQuality is the status's clock quality name (synced, rtc,
	// corrected, estimated), empty when unknown.
	ClockQuality string
	// UnsyncedSince is when the device's clock was first reported not
	// synced, in the collector's clock; zero while synced.
	UnsyncedSince time.Time
	// Buffered is the readings the last status reported not yet acked.
	Buffered uint64
}

// Source calls fn for every known device; fn's error stops it and is
// returned.
type Source func(fn func(Device) error) error

// Qualities are the clock quality label values, in order; devices whose
// status names none (or an unknown one) count as "unknown".
var Qualities = []string{"synced", "rtc", "corrected", "estimated", "unknown"}

// Option changes a Collector.
type Option func(*Collector)

// WithOfflineAfter sets how long without contact makes an online device
// offline (default 5 minutes).
func WithOfflineAfter(d time.Duration) Option { return func(c *Collector) { c.offlineAfter = d } }

// WithDeviceLimit bounds the per-device offline series (default 100; 0
// lists none).
func WithDeviceLimit(n int) Option { return func(c *Collector) { c.limit = n } }

// WithMinInterval sets how long one scan's summary is reused (default 10 s).
func WithMinInterval(d time.Duration) Option { return func(c *Collector) { c.minInterval = d } }

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(c *Collector) { c.now = now } }

// WithLogger sets the logger for scan errors (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *Collector) { c.log = l } }

// Collector is a prometheus.Collector of the fleet summary.
type Collector struct {
	src          Source
	offlineAfter time.Duration
	limit        int
	minInterval  time.Duration
	now          func() time.Time
	log          *slog.Logger

	devices, clock, unsyncedLongest, buffered, offlineSeconds, unlisted, scanSeconds, scanErrors *prometheus.Desc

	mu      sync.Mutex
	last    Summary
	lastAt  time.Time
	scanned bool
	errors  uint64
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a Collector reading devices from src.
func New(src Source, opts ...Option) *Collector {
	c := &Collector{src: src, offlineAfter: DefaultOfflineAfter, limit: 100, minInterval: 10 * time.Second, now: time.Now, log: slog.Default()}
	for _, o := range opts {
		o(c)
	}
	c.devices = prometheus.NewDesc("gridedge_collector_devices",
		"Known devices by state: online (status online and heard from within device_offline_after) or offline.", []string{"state"}, nil)
	c.clock = prometheus.NewDesc("gridedge_collector_devices_clock",
		"Online devices by the clock quality of their last status (synced, rtc, corrected, estimated, unknown).", []string{"quality"}, nil)
	c.unsyncedLongest = prometheus.NewDesc("gridedge_collector_devices_clock_unsynced_longest_seconds",
		"Longest time an online device's clock has been reported not synced (0 when all are synced).", nil, nil)
	c.buffered = prometheus.NewDesc("gridedge_collector_devices_buffered_readings",
		"Readings the online devices' last statuses report buffered, not yet acknowledged (sum over the fleet).", nil, nil)
	c.offlineSeconds = prometheus.NewDesc("gridedge_collector_device_offline_seconds",
		"Seconds since an offline device was last heard from; only the metrics_device_limit devices that went offline most recently are listed.", []string{"device", "site"}, nil)
	c.unlisted = prometheus.NewDesc("gridedge_collector_devices_offline_unlisted",
		"Offline devices beyond metrics_device_limit, not listed in gridedge_collector_device_offline_seconds.", nil, nil)
	c.scanSeconds = prometheus.NewDesc("gridedge_collector_devices_scan_seconds",
		"Duration of the last scan of the known devices.", nil, nil)
	c.scanErrors = prometheus.NewDesc("gridedge_collector_devices_scan_errors_total",
		"Scans of the known devices that failed (the previous summary is served).", nil, nil)
	return c
}

// Offline is one listed offline device.
type Offline struct {
	ID, Site    string
	LastContact time.Time
}

// Summary is the result of one scan.
type Summary struct {
	At              time.Time
	Online, Offline int
	Clock           map[string]int
	UnsyncedLongest time.Duration
	Buffered        uint64
	OfflineListed   []Offline // most recent contact first, at most the device limit
	OfflineUnlisted int
	ScanDuration    time.Duration
}

// Summary returns the current summary, scanning when the last one is older
// than the minimum interval. A failed scan is logged and counted, and the
// previous summary returned.
func (c *Collector) Summary() Summary {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.scanned && now.Sub(c.lastAt) < c.minInterval && !now.Before(c.lastAt) {
		return c.last
	}
	s, err := c.scan(now)
	if err != nil {
		c.errors++
		c.log.Warn("fleet summary: scan failed", "err", err)
		return c.last
	}
	c.last, c.lastAt, c.scanned = s, now, true
	return s
}

// recent is a min-heap on last contact, holding the most recent offline
// devices seen so far.
type recent []Offline

func (h recent) Len() int           { return len(h) }
func (h recent) Less(i, j int) bool { return h[i].LastContact.Before(h[j].LastContact) }
func (h recent) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *recent) Push(x any)        { *h = append(*h, x.(Offline)) }
func (h *recent) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// scan reads every device once; memory is bounded by the device limit.
func (c *Collector) scan(now time.Time) (Summary, error) {
	start := time.Now()
	s := Summary{At: now, Clock: make(map[string]int, len(Qualities))}
	var top recent
	err := c.src(func(d Device) error {
		if !c.online(d, now) {
			s.Offline++
			if c.limit <= 0 {
				return nil
			}
			o := Offline{ID: d.ID, Site: d.Site, LastContact: d.LastContact}
			if len(top) < c.limit {
				heap.Push(&top, o)
			} else if o.LastContact.After(top[0].LastContact) {
				top[0] = o
				heap.Fix(&top, 0)
			}
			return nil
		}
		s.Online++
		q := d.ClockQuality
		if !slices.Contains(Qualities, q) {
			q = "unknown"
		}
		s.Clock[q]++
		if q != "synced" && !d.UnsyncedSince.IsZero() {
			s.UnsyncedLongest = max(s.UnsyncedLongest, now.Sub(d.UnsyncedSince))
		}
		s.Buffered += d.Buffered
		return nil
	})
	if err != nil {
		return Summary{}, fmt.Errorf("fleet: %w", err)
	}
	s.OfflineListed = []Offline(top)
	slices.SortFunc(s.OfflineListed, func(a, b Offline) int {
		return cmp.Or(b.LastContact.Compare(a.LastContact), cmp.Compare(a.ID, b.ID))
	})
	s.OfflineUnlisted = s.Offline - len(s.OfflineListed)
	s.ScanDuration = time.Since(start)
	return s, nil
}

// online applies Online with the configured threshold.
func (c *Collector) online(d Device, now time.Time) bool { return Online(d, now, c.offlineAfter) }

// Describe sends the descriptions of every metric.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.devices, c.clock, c.unsyncedLongest, c.buffered, c.offlineSeconds, c.unlisted, c.scanSeconds, c.scanErrors} {
		ch <- d
	}
}

// Collect sends the current summary.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.Summary()
	c.mu.Lock()
	errs := c.errors
	c.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.devices, float64(s.Online), "online")
	gauge(c.devices, float64(s.Offline), "offline")
	for _, q := range Qualities {
		gauge(c.clock, float64(s.Clock[q]), q)
	}
	gauge(c.unsyncedLongest, s.UnsyncedLongest.Seconds())
	gauge(c.buffered, float64(s.Buffered))
	for _, o := range s.OfflineListed {
		// Ids and sites are validated on intake; a label value Prometheus
		// cannot carry (not UTF-8) is left out rather than failing the scrape.
		if m, err := prometheus.NewConstMetric(c.offlineSeconds, prometheus.GaugeValue, s.At.Sub(o.LastContact).Seconds(), o.ID, o.Site); err == nil {
			ch <- m
		}
	}
	gauge(c.unlisted, float64(s.OfflineUnlisted))
	gauge(c.scanSeconds, s.ScanDuration.Seconds())
	ch <- prometheus.MustNewConstMetric(c.scanErrors, prometheus.CounterValue, float64(errs))
}
