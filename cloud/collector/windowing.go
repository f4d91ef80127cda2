package collector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/cloud/window/pipeline"
)

// windowing drives the event-time engine from the store's ingest log. It
// follows the log instead of taking batches from the ingest workers because
// those commit in parallel: the log says which offsets are complete, so the
// engine sees every reading once, in offset order, whatever the commit
// order was. One goroutine owns the runner; the rest only signal it.
type windowing struct {
	st       *store.Store
	pipes    []window.Pipeline
	log      *slog.Logger
	now      func() time.Time
	interval time.Duration

	wake chan struct{} // a batch was stored

	zmu   sync.Mutex
	zones map[string]string // announced zones ("" for none) not yet given to the engine

	// A new device's first batch can reach the collector just before its
	// status (the agent sends data as soon as it is connected), and calendar
	// windows keep the zone they were created with. So the log is not
	// applied past a device never seen before until its status arrives or
	// grace has passed. Owned by the loop goroutine.
	grace   time.Duration
	known   map[string]struct{}  // devices whose zone question is settled
	waiting map[string]time.Time // new devices held back, since when

	smu        sync.Mutex // guards the snapshot below, read by metrics
	stats      window.Stats
	stateBytes int
	applied    uint64
}

// newWindowing prepares the loop; st is set once the store is open.
func newWindowing(pipes []window.Pipeline, interval, grace time.Duration, now func() time.Time, log *slog.Logger) *windowing {
	return &windowing{pipes: pipes, log: log, now: now, interval: interval, grace: grace,
		wake: make(chan struct{}, 1), zones: map[string]string{},
		known: map[string]struct{}{}, waiting: map[string]time.Time{}}
}

// configID identifies a pipeline configuration: a checkpoint is only
// restored by the configuration that wrote it.
func configID(pipes []window.Pipeline) string {
	h := sha256.New()
	fmt.Fprintf(h, "%#v", pipes)
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// notify tells the loop that the log grew; it never blocks.
func (w *windowing) notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// statusSeen records a device's announced time zone (possibly none) for
// the engine.
func (w *windowing) statusSeen(st store.Status) {
	w.zmu.Lock()
	w.zones[st.Device] = st.TimeZone
	w.zmu.Unlock()
	w.notify()
}

// open restores the engine from its last checkpoint and replays the log
// after it, with the zones the devices' stored statuses announce.
func (w *windowing) open(ctx context.Context) (*pipeline.Runner, error) {
	statuses, err := w.st.Statuses()
	if err != nil {
		return nil, err
	}
	zones := map[string]string{}
	for dev, st := range statuses {
		w.known[dev] = struct{}{}
		if st.TimeZone != "" {
			zones[dev] = st.TimeZone
		}
	}
	// Devices with stored readings are not new: no need to wait for them.
	devices, err := w.st.Devices()
	if err != nil {
		return nil, err
	}
	for _, d := range devices {
		w.known[d.ID] = struct{}{}
	}
	r, err := pipeline.Open(ctx, w.pipes, w.st, w.st.EngineSink(configID(w.pipes)),
		pipeline.WithLogger(w.log), pipeline.WithTimeZones(zones))
	if err != nil {
		return nil, fmt.Errorf("collector: windowing: %w", err)
	}
	w.snapshot(r)
	return r, nil
}

// run applies the log as it grows, advances processing time and commits on
// every interval, until ctx ends; it then applies what is stored and
// commits a last time.
func (w *windowing) run(ctx context.Context, r *pipeline.Runner) error {
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := w.step(context.WithoutCancel(ctx), r, true); err != nil {
				return err
			}
			return nil
		case <-w.wake:
			if err := w.step(ctx, r, false); err != nil {
				w.log.Error("windowing", "err", err)
			}
		case <-tick.C:
			if err := w.step(ctx, r, true); err != nil {
				w.log.Error("windowing", "err", err)
			}
		}
	}
}

// step applies new zones and the readings stored since the last step, and
// commits when asked. Readings are applied with their receive time as
// processing time, a batch at a time.
func (w *windowing) step(ctx context.Context, r *pipeline.Runner, commit bool) error {
	w.zmu.Lock()
	zones := w.zones
	w.zones = map[string]string{}
	w.zmu.Unlock()
	for dev, zone := range zones {
		w.known[dev] = struct{}{}
		delete(w.waiting, dev)
		if zone == "" {
			continue
		}
		if err := r.SetTimeZone(dev, zone); err != nil {
			w.log.Warn("device time zone not usable; keeping the configured one", "device", dev, "err", err)
		}
	}
	now := w.now()
	var (
		batch    []window.Reading
		first    uint64
		last     uint64
		received int64
		err      error
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		// Offsets in a run are consecutive: Apply numbers them from first.
		err := r.Apply(ctx, first, batch, received)
		batch = batch[:0]
		return err
	}
	if w.st.LogEnd() > r.AppliedThrough() {
		err = w.st.ReplayLog(ctx, r.AppliedThrough(), func(e *store.LogEntry) error {
			if !w.settled(e.Reading.Device, now) {
				return errHold
			}
			if len(batch) > 0 && (e.Offset != last+1 || e.ReceivedNs != received || len(batch) >= 4096) {
				if err := flush(); err != nil {
					return err
				}
			}
			if len(batch) == 0 {
				first, received = e.Offset, e.ReceivedNs
			}
			batch = append(batch, e.Reading)
			last = e.Offset
			return nil
		})
		if err == nil || errors.Is(err, errHold) {
			err = flush()
		}
	}
	if err != nil {
		return err
	}
	if commit {
		r.Advance(now.UnixNano())
		if err := r.Commit(ctx); err != nil {
			return err
		}
	}
	w.snapshot(r)
	return nil
}

// errHold stops a log replay at a device waiting for its status.
var errHold = errors.New("held for a new device's status")

// settled reports whether readings of device may be applied now: its status
// was seen, it is known from before, or it has waited the grace period.
func (w *windowing) settled(device string, now time.Time) bool {
	if _, ok := w.known[device]; ok {
		return true
	}
	since, ok := w.waiting[device]
	if !ok {
		w.waiting[device] = now
		since = now
	}
	if now.Sub(since) < w.grace {
		return false
	}
	w.log.Info("no status from a new device within the grace period; its calendar windows use the configured zone", "device", device, "grace", w.grace)
	delete(w.waiting, device)
	w.known[device] = struct{}{}
	return true
}

func (w *windowing) snapshot(r *pipeline.Runner) {
	w.smu.Lock()
	w.stats, w.stateBytes, w.applied = r.Stats(), r.StateBytes(), r.AppliedThrough()
	w.smu.Unlock()
}

func (w *windowing) read() (window.Stats, int, uint64) {
	w.smu.Lock()
	defer w.smu.Unlock()
	return w.stats, w.stateBytes, w.applied
}

// metrics exports the engine's counters.
func (w *windowing) metrics() []prometheus.Collector {
	counter := func(name, help string, get func(window.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 {
			s, _, _ := w.read()
			return float64(get(s))
		})
	}
	return []prometheus.Collector{
		counter("gridedge_collector_window_readings_total", "Readings applied to the windowing engine (since its state was created; restored from checkpoints).", func(s window.Stats) uint64 { return s.Readings }),
		counter("gridedge_collector_window_unrouted_readings_total", "Readings no window pipeline selects.", func(s window.Stats) uint64 { return s.Unrouted }),
		counter("gridedge_collector_window_rejected_readings_total", "Readings the engine refused (time outside 1970..2116 or a non-finite value).", func(s window.Stats) uint64 { return s.Rejected }),
		counter("gridedge_collector_window_late_readings_total", "Readings later than a window's allowed lateness, sent to the late stream (once per pipeline).", func(s window.Stats) uint64 { return s.Late }),
		counter("gridedge_collector_window_results_total", "Window results emitted, every revision.", func(s window.Stats) uint64 { return s.Results }),
		counter("gridedge_collector_window_provisional_results_total", "Provisional results emitted for windows of idle devices.", func(s window.Stats) uint64 { return s.Provisional }),
		counter("gridedge_collector_window_refires_total", "Revisions above 1 caused by late readings within the allowed lateness.", func(s window.Stats) uint64 { return s.Refires }),
		counter("gridedge_collector_window_counter_resets_total", "Energy counter resets seen in final results.", func(s window.Stats) uint64 { return s.CounterReset }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gridedge_collector_window_open_windows", Help: "Windows the engine holds open."}, func() float64 {
			s, _, _ := w.read()
			return float64(s.OpenWindows)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gridedge_collector_window_state_bytes", Help: "Size of the engine's last committed checkpoint."}, func() float64 {
			_, b, _ := w.read()
			return float64(b)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gridedge_collector_window_lag_readings", Help: "Ingest-log offsets stored but not yet applied to the engine."}, func() float64 {
			_, _, applied := w.read()
			return float64(w.st.LogEnd() - min(applied, w.st.LogEnd()))
		}),
	}
}
