package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridedge/gridedge/cloud/dataset"
	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/cloud/readlog/local"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/cloud/worker"
)

// trimEvery is how often retention is enforced on the store.
const trimEvery = time.Hour

// collectorPipelines is the configured pipelines plus one tumbling-window
// pipeline per -window-sizes entry (what /api/v1/windows serves), each
// without a zone of its own defaulting to the site's.
func collectorPipelines(cfg Config) []window.Pipeline {
	pipes := slices.Clone(cfg.Pipelines)
	for _, size := range cfg.WindowSizes {
		pipes = append(pipes, window.Pipeline{
			Name:   store.WindowPipeline(size),
			Inputs: []window.Selector{{}},
			Window: window.WindowSpec{Kind: window.Tumbling, Size: size},
			Aggregations: []window.Aggregation{{Name: "count", Func: window.Count}, {Name: "sum", Func: window.Sum},
				{Name: "mean", Func: window.Mean}, {Name: "min", Func: window.Min}, {Name: "max", Func: window.Max}},
			OutOfOrderness:  cfg.OutOfOrderness,
			AllowedLateness: max(time.Hour, size),
			IdleTimeout:     5 * time.Second,
		})
	}
	for i := range pipes {
		if pipes[i].TimeZone == "" {
			pipes[i].TimeZone = cfg.SiteTZ
		}
	}
	return pipes
}

func openLog(cfg Config, log *slog.Logger) (*local.Log, error) {
	return local.Open(filepath.Join(cfg.DataDir, "log"),
		local.WithPartitions(cfg.Partitions),
		local.WithConsumers(worker.Group),
		local.WithRetention(cfg.LogRetention),
		local.WithLogger(log))
}

// workers runs one worker per readings-log partition and restarts a worker
// that fails (from its stored state) after a pause.
type workers struct {
	cfg   Config
	pipes []window.Pipeline
	log   *local.Log
	st    *store.Store
	// canWrite tells workers whether the disk is above its write floor.
	canWrite func() bool
	now      func() time.Time
	l        *slog.Logger
	quality  *dataset.Quality

	mu  sync.Mutex
	ws  []*worker.Worker
	err []error
}

func newWorkers(cfg Config, pipes []window.Pipeline, lg *local.Log, st *store.Store, canWrite func() bool, now func() time.Time, l *slog.Logger) *workers {
	return &workers{cfg: cfg, pipes: pipes, log: lg, st: st, canWrite: canWrite, now: now, l: l, quality: dataset.NewQuality(pipes, dataset.WithQualityDevices(cfg.MetricsDeviceLimit)),
		ws: make([]*worker.Worker, lg.Partitions()), err: make([]error, lg.Partitions())}
}

func (w *workers) newWorker(p int) (*worker.Worker, error) {
	wc, err := guardedWorkerConfig(w.cfg, len(w.ws), w.canWrite)
	if err != nil {
		return nil, err
	}
	wc.Partition, wc.Log, wc.Store, wc.Pipelines, wc.Now, wc.Logger = p, w.log, w.st, w.pipes, w.now, w.l
	wc.Observe = w.quality.Observe
	return worker.New(wc)
}

// guardedWorkerConfig is what the settings say of a partition worker
// (commits, zones, bad-data checks, the disk's write floor); partitions is
// how many workers share the conflict limit.
func guardedWorkerConfig(cfg Config, partitions int, canWrite func() bool) (worker.Config, error) {
	limits, err := cfg.Limits()
	if err != nil {
		return worker.Config{}, err
	}
	return worker.Config{
		CommitInterval: cfg.CommitInterval, UnloadAfter: cfg.UnloadAfter, ZoneGrace: cfg.ZoneGrace,
		MaxFuture: cfg.MaxFuture, Limits: limits, CanWrite: canWrite,
		// The conflict area is trimmed hourly to conflict_limit: each
		// partition keeps its share per hour, so it holds at most about
		// twice the limit between trims.
		ConflictsPerHour: max(cfg.ConflictLimit/max(partitions, 1), 1),
	}, nil
}

// open restores every partition's worker. A nil *workers (the intake
// role) has none.
func (w *workers) open() error {
	if w == nil {
		return nil
	}
	for p := range w.ws {
		wk, err := w.newWorker(p)
		if err != nil {
			return fmt.Errorf("collector: %w", err)
		}
		w.ws[p] = wk
	}
	return nil
}

// run runs the workers and the retention job until ctx ends; each worker
// commits what it has read before it stops.
func (w *workers) run(ctx context.Context) error {
	if w == nil {
		return nil
	}
	var wg sync.WaitGroup
	for p := range w.ws {
		wg.Go(func() { w.runPartition(ctx, p) })
	}
	wg.Go(func() { w.trim(ctx) })
	wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return errors.Join(w.err...)
}

func (w *workers) runPartition(ctx context.Context, p int) {
	for {
		w.mu.Lock()
		wk := w.ws[p]
		w.mu.Unlock()
		err := wk.Run(ctx)
		if err == nil || ctx.Err() != nil {
			w.mu.Lock()
			w.err[p] = err
			w.mu.Unlock()
			return
		}
		var te *readlog.TrimmedError
		if errors.As(err, &te) {
			// It fell behind log_retention: the records in between are
			// gone (the log counts them as trimmed). Go on after them.
			w.l.Error("readings deleted by the log's retention before the worker read them; continuing after them",
				"partition", p, "from", te.Requested, "to", te.Available)
			b := w.st.NewBatch(p)
			b.SetOffset(te.Available)
			err = b.Commit()
		}
		if err != nil {
			w.l.Error("partition worker failed; restarting it from its stored state", "partition", p, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		nw, err := w.newWorker(p)
		if err != nil {
			w.l.Error("partition worker cannot restart", "partition", p, "err", err)
			continue
		}
		w.mu.Lock()
		w.ws[p] = nw
		w.mu.Unlock()
	}
}

func (w *workers) trim(ctx context.Context) { runRetention(ctx, w.cfg, w.st, w.now, w.l) }

// runRetention trims the store's data classes now and every trimEvery
// until ctx ends.
func runRetention(ctx context.Context, cfg Config, st *store.Store, now func() time.Time, l *slog.Logger) {
	r := store.Retention{Readings: cfg.ReadingsRetention, Results: cfg.ResultsRetention, Late: cfg.LateRetention,
		DeadLetters: cfg.DeadLetterRetention, MaxDeadLetters: cfg.DeadLetterLimit,
		Conflicts: cfg.ConflictRetention, MaxConflicts: cfg.ConflictLimit}
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	for {
		if _, err := st.Trim(ctx, now(), r); err != nil && ctx.Err() == nil {
			l.Warn("retention", "err", err)
		}
		if err := st.TrimFeed(now()); err != nil && ctx.Err() == nil {
			l.Warn("results feed retention", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *workers) stats() []worker.Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]worker.Stats, len(w.ws))
	for i, wk := range w.ws {
		if wk != nil {
			out[i] = wk.Stats()
		}
	}
	return out
}

// metrics exports the workers' and the log's counters.
func (w *workers) metrics() []prometheus.Collector {
	if w == nil {
		return nil
	}
	return append(workerMetrics(w.stats), w.quality,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gridedge_collector_lag_records", Help: "Readings-log records durable but not yet read by the workers."}, func() float64 {
			st, ws := w.log.Stats(), w.stats()
			var lag int64
			for p, ps := range st.Partitions {
				if p < len(ws) {
					lag += max(ps.Durable-ws[p].Next, 0)
				}
			}
			return float64(lag)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gridedge_collector_log_bytes", Help: "Bytes of the readings log's segment files."}, func() float64 {
			var b int64
			for _, ps := range w.log.Stats().Partitions {
				b += ps.Bytes
			}
			return float64(b)
		}))
}

// workerMetrics exports counters summed over the workers stats returns.
func workerMetrics(stats func() []worker.Stats) []prometheus.Collector {
	sum := func(f func(worker.Stats) float64) func() float64 {
		return func() float64 {
			var t float64
			for _, s := range stats() {
				t += f(s)
			}
			return t
		}
	}
	counter := func(name, help string, f func(worker.Stats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, sum(f))
	}
	gauge := func(name, help string, f func(worker.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, sum(f))
	}
	return []prometheus.Collector{
		counter("gridedge_collector_readings_stored_total", "New readings stored by the workers (since start).", func(s worker.Stats) float64 { return float64(s.Stored) }),
		counter("gridedge_collector_readings_duplicate_total", "Readings the workers recognised as already stored (resends, redelivery).", func(s worker.Stats) float64 { return float64(s.Duplicates) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gridedge_collector_readings_flagged_total", ConstLabels: prometheus.Labels{"flag": "future"},
			Help: "Readings stored flagged and kept out of the windows, by flag (future: dated beyond max_future; implausible: outside the quantity's range)."},
			sum(func(s worker.Stats) float64 { return float64(s.Future) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gridedge_collector_readings_flagged_total", ConstLabels: prometheus.Labels{"flag": "implausible"},
			Help: "Readings stored flagged and kept out of the windows, by flag (future: dated beyond max_future; implausible: outside the quantity's range)."},
			sum(func(s worker.Stats) float64 { return float64(s.Implausible) })),
		counter("gridedge_collector_readings_conflict_total", "Resent reading identities (device, seq_epoch, seq) with other content; the first stored reading stays (GET /api/v1/conflicts).", func(s worker.Stats) float64 { return float64(s.Conflicts) }),
		counter("gridedge_collector_conflicts_not_kept_total", "Conflicts counted but not kept: beyond the hourly share of conflict_limit.", func(s worker.Stats) float64 { return float64(s.ConflictsNotKept) }),
		counter("gridedge_collector_readings_resend_unverified_total", "Resent estimated or corrected readings not found near their time (possibly re-dated), taken as duplicates.", func(s worker.Stats) float64 { return float64(s.Unverified) }),
		counter("gridedge_collector_worker_disk_waits_total", "Commit intervals workers spent waiting for the disk to rise above its write floor.", func(s worker.Stats) float64 { return float64(s.DiskWaits) }),
		counter("gridedge_collector_readings_redated_total", "Estimated readings of a never-synced boot dated from the receive time (docs/time.md).", func(s worker.Stats) float64 { return float64(s.Redated) }),
		counter("gridedge_collector_worker_commits_total", "Worker commits (one synced store batch each); flat while idle.", func(s worker.Stats) float64 { return float64(s.Commits) }),
		counter("gridedge_collector_worker_commit_bytes_total", "Bytes of worker commits.", func(s worker.Stats) float64 { return float64(s.CommitBytes) }),
		counter("gridedge_collector_window_readings_total", "Readings applied to the window engines (since their state was created).", func(s worker.Stats) float64 { return float64(s.Engine.Readings) }),
		counter("gridedge_collector_window_late_readings_total", "Readings later than a window's allowed lateness, in the late stream (once per pipeline).", func(s worker.Stats) float64 { return float64(s.Engine.Late) }),
		counter("gridedge_collector_window_results_total", "Window results emitted, every revision.", func(s worker.Stats) float64 { return float64(s.Engine.Results) }),
		counter("gridedge_collector_window_provisional_results_total", "Provisional results emitted for windows of idle devices.", func(s worker.Stats) float64 { return float64(s.Engine.Provisional) }),
		counter("gridedge_collector_window_refires_total", "Revisions above 1 caused by late readings within the allowed lateness.", func(s worker.Stats) float64 { return float64(s.Engine.Refires) }),
		counter("gridedge_collector_window_rejected_readings_total", "Readings the engine refused (time outside 1970..2116 or a non-finite value).", func(s worker.Stats) float64 { return float64(s.Engine.Rejected) }),
		counter("gridedge_collector_window_counter_resets_total", "Energy counter resets seen in final results.", func(s worker.Stats) float64 { return float64(s.Engine.CounterReset) }),
		gauge("gridedge_collector_window_open_windows", "Windows the engines hold open.", func(s worker.Stats) float64 { return float64(s.Engine.OpenWindows) }),
		gauge("gridedge_collector_window_unloaded_devices", "Quiet devices whose window state is out of memory (unload_after), read back from the store when needed.", func(s worker.Stats) float64 { return float64(s.Engine.Unloaded) }),
		gauge("gridedge_collector_worker_held_records", "Records of new devices held for their status (zone).", func(s worker.Stats) float64 { return float64(s.Held) }),
		gauge("gridedge_collector_worker_open_blocks", "Raw-reading blocks held in memory.", func(s worker.Stats) float64 { return float64(s.OpenBlocks) }),
	}
}
