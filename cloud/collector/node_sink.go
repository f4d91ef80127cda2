package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gridedge/gridedge/cloud/diskguard"
	"github.com/gridedge/gridedge/cloud/feed"
	"github.com/gridedge/gridedge/cloud/readlog/kafka"
	"github.com/gridedge/gridedge/cloud/store"
)

// sinkPollRecords bounds the records a sink applies in one store batch.
const sinkPollRecords = 10_000

// SinkNode is the sink role: it follows the workers' output topics and
// the dead letters, reading committed records only, into its embedded
// store, and serves the HTTP API for every partition. What it stores and
// how far it has read each topic partition are written in one synced
// batch, so after a crash it resumes exactly where its store is: every
// committed worker output lands once. Any number of sinks may run, each
// with its own store (for the API's availability, or near its users).
//
// From the results topic it takes every result revision (the highest
// kept per window), device counters and statuses; from the raw topic the
// raw-reading blocks; the late and conflict topics' records go under the
// store key their header carries; dead letters get an id from their
// position. The workers' changelog (their private engine and dedup state)
// is not read.
type SinkNode struct {
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
	reg  *prometheus.Registry
	st   *store.Store
	klog *kafka.Log
	disk *diskguard.Guard

	topics map[string]int // topic -> partitions

	httpLn  net.Listener
	httpSrv *http.Server

	applied atomic.Uint64
	skipped prometheus.Counter

	mu        sync.Mutex
	running   bool
	closeOnce sync.Once
	closeErr  error
}

// NewSink validates cfg (role sink), opens the store in data_dir,
// connects to Kafka (creating the topics it reads when missing) and binds
// the HTTP listener.
func NewSink(cfg Config, opts ...Option) (*SinkNode, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("collector: config: %w", err)
	}
	if cfg.Role != RoleSink {
		return nil, fmt.Errorf("collector: NewSink with role %q", cfg.Role)
	}
	c := &Collector{log: slog.Default(), now: time.Now}
	for _, o := range opts {
		o(c)
	}
	n := &SinkNode{cfg: cfg, log: c.log, now: c.now, reg: prometheus.NewRegistry(), topics: map[string]int{}}
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
	if n.st, err = store.Open(filepath.Join(cfg.DataDir, "store"), store.WithLogger(n.log)); err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), kafkaStartTimeout)
	defer cancel()
	if n.klog, err = kafka.Open(ctx, kopts...); err != nil {
		n.st.Close()
		return nil, fmt.Errorf("collector: %w", err)
	}
	parts := n.klog.Partitions()
	specs := outputTopics(cfg, parts)
	if err := n.klog.EnsureTopics(ctx, specs...); err != nil {
		n.Close()
		return nil, fmt.Errorf("collector: %w", err)
	}
	for _, s := range specs {
		if s.Name != cfg.Kafka.ChangelogTopic { // the workers' own state
			n.topics[s.Name] = s.Partitions
		}
	}
	// The dead letters keep the partition count intake gave them (one).
	dlq, err := n.klog.EnsureTopic(ctx, cfg.Kafka.DeadLetterTopic, 0)
	if err != nil {
		dlq, err = n.klog.EnsureTopic(ctx, cfg.Kafka.DeadLetterTopic, 1)
	}
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("collector: %w", err)
	}
	n.topics[cfg.Kafka.DeadLetterTopic] = dlq
	n.skipped = prometheus.NewCounter(prometheus.CounterOpts{Name: "gridedge_collector_sink_skipped_records_total",
		Help: "Output-topic records the sink could not decode (logged), skipped."})
	cols := []prometheus.Collector{n.skipped,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gridedge_collector_sink_records_total",
			Help: "Output-topic records the sink stored."}, func() float64 { return float64(n.applied.Load()) }),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
	cols = append(cols, n.disk.Metrics()...)
	for _, col := range cols {
		if err := n.reg.Register(col); err != nil {
			n.Close()
			return nil, fmt.Errorf("collector: register metrics: %w", err)
		}
	}
	if n.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		n.Close()
		return nil, fmt.Errorf("collector: http_addr %s: %w", cfg.HTTPAddr, err)
	}
	pipes := collectorPipelines(cfg)
	n.httpSrv = apiServer(cfg, n.st, pipes, n.reg, n.health, n.log, apiOpts)
	return n, nil
}

// HTTPAddr is the bound address of the HTTP API.
func (n *SinkNode) HTTPAddr() string { return n.httpLn.Addr().String() }

// MQTTURL is empty: a sink does not use MQTT.
func (n *SinkNode) MQTTURL() string { return "" }

// Store gives read access to the sink's store.
func (n *SinkNode) Store() *store.Store { return n.st }

func (n *SinkNode) health() error {
	if err := n.st.Ping(); err != nil {
		return err
	}
	if err := n.disk.Health(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return n.klog.Ping(ctx)
}

// Run serves the API and follows the topics until ctx ends.
func (n *SinkNode) Run(ctx context.Context) error {
	n.mu.Lock()
	if n.running {
		n.mu.Unlock()
		return errors.New("collector: Run called twice")
	}
	n.running = true
	n.mu.Unlock()
	defer n.Close()
	httpErr := make(chan error, 1)
	go func() {
		if err := n.httpSrv.Serve(n.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			httpErr <- fmt.Errorf("collector: http: %w", err)
		}
	}()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var bg sync.WaitGroup
	bg.Go(func() { runRetention(runCtx, n.cfg, n.st, n.now, n.log) })
	followErr := make(chan error, 1)
	bg.Go(func() { followErr <- n.follow(runCtx) })
	n.log.Info("sink started", "http", n.HTTPAddr(), "brokers", n.cfg.Kafka.Brokers, "data_dir", n.cfg.DataDir)
	var err error
	select {
	case <-ctx.Done():
	case err = <-httpErr:
	case err = <-followErr:
	}
	stop()
	bg.Wait()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := n.httpSrv.Shutdown(shutdownCtx); serr != nil && err == nil {
		err = fmt.Errorf("collector: http shutdown: %w", serr)
	}
	return errors.Join(err, n.Close())
}

// follow applies committed records from the stored cursors on, one store
// batch (with the new cursors) per poll, until ctx ends.
func (n *SinkNode) follow(ctx context.Context) error {
	pos := map[string]map[int]int64{}
	for t, parts := range n.topics {
		pos[t] = map[int]int64{}
		for p := range parts {
			at, err := n.st.Cursor(t, p)
			if err != nil {
				return fmt.Errorf("collector: %w", err)
			}
			pos[t][p] = at
		}
	}
	f, err := n.klog.Follow(pos)
	if err != nil {
		return fmt.Errorf("collector: %w", err)
	}
	defer f.Close()
	for {
		if !n.waitForDisk(ctx) {
			return nil
		}
		recs, err := f.Poll(ctx, sinkPollRecords)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			n.log.Warn("sink: reading the output topics", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		b := n.st.NewBatch(0)
		var applied uint64
		for _, r := range recs {
			ok, err := n.apply(b, r)
			if err != nil {
				n.skipped.Inc()
				n.log.Error("sink: record skipped", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
			} else if ok {
				applied++
			}
			b.SetCursor(r.Topic, int(r.Partition), r.Offset+1)
		}
		if err := b.Commit(); err != nil {
			// The cursors were not moved: the records are read again.
			return fmt.Errorf("collector: sink: %w", err)
		}
		n.applied.Add(applied)
	}
}

// waitForDisk holds the sink while the disk is below its write floor.
func (n *SinkNode) waitForDisk(ctx context.Context) bool {
	for !n.disk.CanWrite() {
		n.log.Error("disk below its write floor: the sink waits for space")
		select {
		case <-ctx.Done():
			return false
		case <-time.After(n.cfg.CommitInterval):
		}
	}
	return true
}

// apply puts one record into the batch; false: nothing of it is stored
// (a worker's private state).
func (n *SinkNode) apply(b *store.Batch, r *kgo.Record) (bool, error) {
	k := n.cfg.Kafka
	switch r.Topic {
	case k.RawTopic:
		if store.KeyClass(r.Key) != store.ClassBlock {
			return false, nil // a fence record
		}
		if r.Value == nil {
			return true, b.Delete(r.Key)
		}
		return true, b.Set(r.Key, r.Value)
	case k.ResultsTopic:
		rec, err := feed.Decode(r.Value)
		if err != nil {
			return false, err
		}
		switch rec.Kind {
		case feed.KindResult:
			return true, b.PutWindowResult(*rec.Result)
		case feed.KindDevice:
			return true, b.PutDevice(rec.Device)
		case feed.KindStatus:
			return true, b.PutStatus(*rec.Status)
		}
		return false, nil
	case k.LateTopic:
		rec, err := feed.Decode(r.Value)
		if err != nil {
			return false, err
		}
		if rec.Kind != feed.KindLate {
			return false, nil
		}
		key := storeKey(r)
		if key == nil {
			return false, fmt.Errorf("no %s header", StoreKeyHeader)
		}
		v, err := json.Marshal(rec.Late)
		if err != nil {
			return false, err
		}
		return true, b.Set(key, v)
	case k.ConflictTopic:
		key := storeKey(r)
		if key == nil {
			return false, fmt.Errorf("no %s header", StoreKeyHeader)
		}
		return true, b.Set(key, r.Value)
	case k.DeadLetterTopic:
		var dl store.DeadLetter
		if err := json.Unmarshal(r.Value, &dl); err != nil {
			return false, fmt.Errorf("dead letter: %w", err)
		}
		// Unique per record: partition in the top 16 bits, offset below.
		return true, b.PutDeadLetterAt(dl, uint64(r.Partition)<<48|uint64(r.Offset+1))
	}
	return false, nil
}

func storeKey(r *kgo.Record) []byte {
	for _, h := range r.Headers {
		if h.Key == StoreKeyHeader {
			return h.Value
		}
	}
	return nil
}

// Close releases the store, Kafka and the listener; Run calls it.
func (n *SinkNode) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		if n.httpLn != nil {
			if err := n.httpLn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
		if n.klog != nil {
			errs = append(errs, n.klog.Close())
		}
		if n.st != nil {
			errs = append(errs, n.st.Close())
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}
