package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gridedge/gridedge/cloud/analytics"
	"github.com/gridedge/gridedge/cloud/dataset"
	"github.com/gridedge/gridedge/cloud/diskguard"
	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/cloud/readlog/kafka"
	"github.com/gridedge/gridedge/cloud/sink/postgres"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/cloud/worker"
)

// WorkerNode is the worker role: a member of the workers' consumer group
// that runs a cloud/worker for each partition the group assigns to it.
//
// Each commit of a partition's worker is one Kafka transaction of the
// partition's transactional producer: the changelog records of the state
// it changed (offset, engine and dedup state, device counters, statuses,
// raw blocks), its results, late readings and conflicts, and the readings
// offset to resume from as the group's committed offset. On assignment the
// node fences the partition's previous producer and replays the
// partition's changelog into its store (a cache: only what it has not
// applied yet), so a partition resumes exactly where the last committed
// transaction left it, whichever node committed it. The node's store and
// API keep what this node computed; the whole cluster's API is the sink's.
type WorkerNode struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	reg   *prometheus.Registry
	pipes []window.Pipeline
	// quality measures the datasets the partitions' workers commit.
	quality *dataset.Quality
	st      *store.Store
	klog    *kafka.Log
	disk    *diskguard.Guard
	// analytics derives bands and forecasts (nil when disabled).
	analytics *analytics.Runner
	// pg is the PostgreSQL sink of this node's store, nil unless configured.
	pg *postgres.Sink
	// pgReader serves the API from PostgreSQL (postgres.serve_api).
	pgReader *postgres.Reader

	httpLn  net.Listener
	httpSrv *http.Server

	mu     sync.Mutex
	runCtx context.Context
	parts  map[int]*partitionRun
	member *kafka.Member
	m      struct {
		trimmed  prometheus.Counter
		restarts prometheus.Counter
		txns     prometheus.Counter
		aborted  prometheus.Counter
		restored prometheus.Counter
	}

	running   bool
	closeOnce sync.Once
	closeErr  error
}

// partitionRun is one assigned partition's worker goroutine.
type partitionRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	w      *worker.Worker
}

// NewWorker validates cfg (role worker), opens the store in data_dir and
// connects to Kafka. Run joins the group.
func NewWorker(cfg Config, opts ...Option) (*WorkerNode, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("collector: config: %w", err)
	}
	if cfg.Role != RoleWorker {
		return nil, fmt.Errorf("collector: NewWorker with role %q", cfg.Role)
	}
	// Options are written for Collector; apply them to one to read them.
	c := &Collector{log: slog.Default(), now: time.Now}
	for _, o := range opts {
		o(c)
	}
	n := &WorkerNode{cfg: cfg, log: c.log, now: c.now, reg: prometheus.NewRegistry(), pipes: collectorPipelines(cfg),
		parts: map[int]*partitionRun{}}
	n.quality = dataset.NewQuality(n.pipes, dataset.WithQualityDevices(cfg.MetricsDeviceLimit))
	if err := store.RefuseOldFormat(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	kopts, err := kafkaOptions(cfg, n.log)
	if err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	apiOpts, err := apiAccess(cfg, n.log)
	if err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	n.disk = diskguard.New(cfg.DataDir, cfg.MinFreeBytes, diskguard.WithLogger(n.log))
	if n.st, err = store.Open(filepath.Join(cfg.DataDir, "store"), cfg.storeOptions(n.log)...); err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), kafkaStartTimeout)
	defer cancel()
	if n.klog, err = kafka.Open(ctx, kopts...); err != nil {
		n.st.Close()
		return nil, fmt.Errorf("collector: %w", err)
	}
	if n.pg, err = newPostgresSink(cfg, n.st, n.klog.Partitions(), n.log); err != nil {
		n.Close()
		return nil, fmt.Errorf("collector: %w", err)
	}
	n.m.trimmed = prometheus.NewCounter(prometheus.CounterOpts{Name: "gridedge_collector_worker_trimmed_records_total",
		Help: "Readings-topic records a worker never read because retention deleted them first (state restarted past them)."})
	n.m.restarts = prometheus.NewCounter(prometheus.CounterOpts{Name: "gridedge_collector_worker_restarts_total",
		Help: "Partition workers restarted from their committed state after an error."})
	n.m.txns = prometheus.NewCounter(prometheus.CounterOpts{Name: "gridedge_collector_worker_transactions_total",
		Help: "Worker commits committed as Kafka transactions."})
	n.m.aborted = prometheus.NewCounter(prometheus.CounterOpts{Name: "gridedge_collector_worker_transactions_aborted_total",
		Help: "Worker commits whose Kafka transaction failed and was aborted (the worker restarts from the committed state)."})
	n.m.restored = prometheus.NewCounter(prometheus.CounterOpts{Name: "gridedge_collector_worker_changelog_restored_records_total",
		Help: "Changelog records applied to this node's store when taking partitions over."})
	if err := n.klog.EnsureTopics(ctx, outputTopics(cfg, n.klog.Partitions())...); err != nil {
		n.Close()
		return nil, fmt.Errorf("collector: %w", err)
	}
	cols := append(workerMetrics(n.stats), n.m.trimmed, n.m.restarts, n.quality, n.m.txns, n.m.aborted, n.m.restored,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gridedge_collector_worker_partitions",
			Help: "Readings-topic partitions this worker owns."}, func() float64 { return float64(len(n.Owned())) }),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cols = append(cols, n.disk.Metrics()...)
	if n.analytics, err = newAnalytics(cfg, n.st, n.klog.Partitions(), n.now, n.log, c.analyticsOpts); err != nil {
		n.Close()
		return nil, err
	}
	if n.analytics != nil {
		cols = append(cols, n.analytics.Metrics()...)
	}
	cols = append(cols, fleetMetrics(cfg, n.st, n.now, n.log))
	if n.pg != nil {
		cols = append(append(cols, n.pg.Metrics()...), feedMetrics(n.st, n.klog.Partitions())...)
	}
	for _, col := range cols {
		if err := n.reg.Register(col); err != nil {
			n.Close()
			return nil, fmt.Errorf("collector: register metrics: %w", err)
		}
	}
	pgAPI, reader, err := postgresAPI(cfg)
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("collector: %w", err)
	}
	n.pgReader = reader
	apiOpts = append(apiOpts, pgAPI...)
	if n.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		n.Close()
		return nil, fmt.Errorf("collector: http_addr %s: %w", cfg.HTTPAddr, err)
	}
	n.httpSrv = apiServer(cfg, n.st, n.pipes, n.reg, n.health, n.log, apiOpts)
	return n, nil
}

// HTTPAddr is the bound address of the HTTP API.
func (n *WorkerNode) HTTPAddr() string { return n.httpLn.Addr().String() }

// MQTTURL is empty: a worker does not use MQTT.
func (n *WorkerNode) MQTTURL() string { return "" }

// Store gives read access to the node's store.
func (n *WorkerNode) Store() *store.Store { return n.st }

// Owned lists the partitions whose workers run here.
func (n *WorkerNode) Owned() []int {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]int, 0, len(n.parts))
	for p := range n.parts {
		out = append(out, p)
	}
	return out
}

// health is ready when the store answers, a Kafka broker answers and the
// node is in the group.
func (n *WorkerNode) health() error {
	if err := n.st.Ping(); err != nil {
		return err
	}
	if err := n.disk.Health(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := n.klog.Ping(ctx); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.member == nil {
		return errors.New("kafka: not in the workers' group yet")
	}
	return nil
}

// Run serves the API, joins the group and runs the assigned partitions'
// workers until ctx ends; then it leaves the group, each worker committing
// what it read before its partition is handed over.
func (n *WorkerNode) Run(ctx context.Context) error {
	n.mu.Lock()
	if n.running {
		n.mu.Unlock()
		return errors.New("collector: Run called twice")
	}
	n.running = true
	runCtx, stopRuns := context.WithCancel(context.Background())
	defer stopRuns()
	n.runCtx = runCtx
	n.mu.Unlock()
	defer n.Close()
	httpErr := make(chan error, 1)
	go func() {
		if err := n.httpSrv.Serve(n.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			httpErr <- fmt.Errorf("collector: http: %w", err)
		}
	}()
	var bg sync.WaitGroup
	trimCtx, stopTrim := context.WithCancel(context.Background())
	bg.Go(func() { runRetention(trimCtx, n.cfg, n.st, n.now, n.log) })
	if n.analytics != nil {
		bg.Go(func() { _ = n.analytics.Run(trimCtx) })
	}
	if n.pg != nil {
		bg.Go(func() { _ = n.pg.Run(trimCtx) })
	}
	member, err := n.klog.Join(worker.Group, n)
	if err != nil {
		stopTrim()
		bg.Wait()
		return fmt.Errorf("collector: %w", err)
	}
	n.mu.Lock()
	n.member = member
	n.mu.Unlock()
	n.log.Info("worker started", "http", n.HTTPAddr(), "brokers", n.cfg.Kafka.Brokers, "topic", n.cfg.Kafka.Topic,
		"partitions", n.klog.Partitions(), "data_dir", n.cfg.DataDir)
	select {
	case <-ctx.Done():
	case err = <-httpErr:
	}
	n.log.Info("worker stopping: leaving the group")
	member.Close() // revokes every partition: each worker commits and stops
	n.stopAll()
	stopTrim()
	bg.Wait()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := n.httpSrv.Shutdown(shutdownCtx); serr != nil && err == nil {
		err = fmt.Errorf("collector: http shutdown: %w", serr)
	}
	return errors.Join(err, n.Close())
}

// Assigned starts a worker for each partition (kafka.Handler).
func (n *WorkerNode) Assigned(_ context.Context, ps []int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range ps {
		if n.parts[p] != nil || n.runCtx == nil {
			continue
		}
		ctx, cancel := context.WithCancel(n.runCtx)
		pr := &partitionRun{cancel: cancel, done: make(chan struct{})}
		n.parts[p] = pr
		go n.runPartition(ctx, p, pr)
	}
}

// Revoked stops the partitions' workers, each after its final commit
// (kafka.Handler); the group hands them over once it returns.
func (n *WorkerNode) Revoked(_ context.Context, ps []int) { n.stop(ps) }

// Lost stops the partitions' workers (kafka.Handler). Their commits go to
// this node's store, which stays consistent; another node now owns them.
func (n *WorkerNode) Lost(ps []int) { n.stop(ps) }

func (n *WorkerNode) stop(ps []int) {
	n.mu.Lock()
	var runs []*partitionRun
	for _, p := range ps {
		if pr := n.parts[p]; pr != nil {
			runs = append(runs, pr)
			delete(n.parts, p)
		}
	}
	n.mu.Unlock()
	for _, pr := range runs {
		pr.cancel()
	}
	for _, pr := range runs {
		<-pr.done
	}
}

func (n *WorkerNode) stopAll() {
	n.stop(n.Owned())
}

// runPartition restores partition p's worker from the store and runs it
// until ctx ends; a failed worker is restored again after a pause.
func (n *WorkerNode) runPartition(ctx context.Context, p int, pr *partitionRun) {
	defer close(pr.done)
	for {
		wc, err := guardedWorkerConfig(n.cfg, n.cfg.Kafka.Partitions, n.disk.CanWrite)
		var txn *kafka.Txn
		if err == nil {
			txn, err = n.takeOver(ctx, p)
		}
		var w *worker.Worker
		if err == nil {
			wc.Partition, wc.Log, wc.Store, wc.Pipelines, wc.Now, wc.Logger = p, n.klog, n.st, n.pipes, n.now, n.log
			wc.Observe = n.quality.Observe
			wc.Committer = &txnCommitter{n: n, p: p, ctx: context.WithoutCancel(ctx), txn: txn, source: txn.ID()}
			w, err = worker.New(wc)
		}
		if err == nil {
			pr.mu.Lock()
			pr.w = w
			pr.mu.Unlock()
			err = w.Run(ctx)
		}
		if txn != nil {
			txn.Close()
		}
		if err == nil || ctx.Err() != nil {
			return
		}
		pause := time.Second
		if errors.Is(err, kafka.ErrFenced) {
			// Another node took the partition over; the group will take
			// it from this one. Try again only if it has not after a
			// session timeout.
			n.log.Warn("partition fenced by another owner; waiting for the group to reassign it", "partition", p, "err", err)
			pause, err = n.cfg.Kafka.SessionTimeout, nil
		}
		var te *readlog.TrimmedError
		if errors.As(err, &te) {
			err = n.skipTrimmed(p, te)
		}
		if err != nil {
			n.m.restarts.Inc()
			n.log.Error("partition worker failed; restarting it from its committed state", "partition", p, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
	}
}

// skipTrimmed moves partition p's stored offset to where the topic's data
// starts: the records in between were deleted by retention before this
// node read them (a partition new to this node whose early records are
// gone, or a worker that fell behind the retention). Logged and counted.
func (n *WorkerNode) skipTrimmed(p int, te *readlog.TrimmedError) error {
	n.m.trimmed.Add(float64(te.Available - te.Requested))
	n.log.Error("readings deleted by the topic's retention before this worker read them; continuing after them",
		"partition", p, "from", te.Requested, "to", te.Available)
	b := n.st.NewBatch(p)
	b.SetOffset(te.Available)
	return b.Commit()
}

// stats returns the running workers' counters.
func (n *WorkerNode) stats() []worker.Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]worker.Stats, 0, len(n.parts))
	for _, pr := range n.parts {
		pr.mu.Lock()
		if pr.w != nil {
			out = append(out, pr.w.Stats())
		}
		pr.mu.Unlock()
	}
	return out
}

// Close releases the store, Kafka and the listener; Run calls it.
func (n *WorkerNode) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		m := n.member
		n.mu.Unlock()
		if m != nil {
			m.Close()
		}
		n.stopAll()
		var errs []error
		if n.httpLn != nil {
			if err := n.httpLn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
		if n.klog != nil {
			errs = append(errs, n.klog.Close())
		}
		if n.pg != nil {
			n.pg.Close()
		}
		if n.pgReader != nil {
			n.pgReader.Close()
		}
		if n.st != nil {
			errs = append(errs, n.st.Close())
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}
