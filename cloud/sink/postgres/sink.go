package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridedge/gridedge/cloud/feed"
)

// Name is the sink's name among the feed's registered cursors.
const Name = "postgres"

// Option changes a Sink.
type Option func(*Sink)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Sink) { s.log = l } }

// WithPassword sets the password, kept out of the URL (and of logs).
func WithPassword(p string) Option { return func(s *Sink) { s.password = p } }

// WithHistory also writes every revision of every window to
// gridedge.result_history (default off: results keep the highest).
func WithHistory(on bool) Option { return func(s *Sink) { s.history = on } }

// WithBatch bounds the feed records written per transaction (default
// 5,000).
func WithBatch(records int) Option { return func(s *Sink) { s.batchMax = records } }

// WithMaxConns bounds the connections to PostgreSQL (default 4).
func WithMaxConns(n int32) Option { return func(s *Sink) { s.maxConns = n } }

// WithBackoff sets the first and the longest pause between attempts after
// an error (default 200 ms, 10 s).
func WithBackoff(first, longest time.Duration) Option {
	return func(s *Sink) { s.backoff0, s.backoffMax = first, longest }
}

// WithClock replaces time.Now for the readings retention (tests).
func WithClock(now func() time.Time) Option { return func(s *Sink) { s.now = now } }

// Sink writes a results feed into PostgreSQL. Run it once.
type Sink struct {
	src      feed.Source
	url      string
	password string
	log      *slog.Logger
	history  bool
	batchMax int
	maxConns int32

	backoff0, backoffMax time.Duration

	readings          bool
	readingsRetention time.Duration
	now               func() time.Time
	partMu            sync.Mutex
	partitions        map[time.Time]bool // reading partitions known to exist

	pool      *pgxpool.Pool
	ready     chan struct{}
	connected atomic.Bool
	pos       []atomic.Uint64 // per partition: position written (valid once known)
	known     []atomic.Bool

	m struct {
		connected prometheus.GaugeFunc
		lag       prometheus.GaugeFunc
		rows      *prometheus.CounterVec
		records   prometheus.Counter
		txs       prometheus.Counter
		errors    prometheus.Counter
		resyncs   prometheus.Counter
		skipped   prometheus.Counter
		dropped   prometheus.Counter
	}
}

// New returns a sink of src into the database at rawURL. It connects only
// when Run starts, and keeps trying: PostgreSQL need not be up.
func New(src feed.Source, rawURL string, opts ...Option) (*Sink, error) {
	s := &Sink{src: src, url: rawURL, log: slog.Default(), batchMax: 5000, maxConns: 4,
		backoff0: 200 * time.Millisecond, backoffMax: 10 * time.Second, ready: make(chan struct{}),
		now: time.Now, partitions: map[time.Time]bool{},
		pos: make([]atomic.Uint64, src.Partitions()), known: make([]atomic.Bool, src.Partitions())}
	for _, o := range opts {
		o(s)
	}
	if s.readings && s.readingsRetention <= 0 {
		return nil, fmt.Errorf("postgres: readings retention %v must be positive", s.readingsRetention)
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: url %s: %w", Redact(rawURL), err)
	}
	if s.password != "" {
		cfg.ConnConfig.Password = s.password
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	cfg.MaxConns = s.maxConns
	cfg.MinConns = 0
	cfg.MaxConnIdleTime = time.Minute
	cfg.HealthCheckPeriod = 30 * time.Second
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "gridedge-collector"
	if s.pool, err = pgxpool.NewWithConfig(context.Background(), cfg); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s.initMetrics()
	return s, nil
}

// Close releases the connection pool; Run does it when it returns. Call it
// yourself only when Run is never called. It is idempotent.
func (s *Sink) Close() { s.pool.Close() }

// Redact returns the URL without its password, for logs.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func (s *Sink) initMetrics() {
	l := prometheus.Labels{"sink": Name}
	s.m.connected = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gridedge_sink_connected", ConstLabels: l,
		Help: "1 while the sink's last PostgreSQL operation succeeded."}, func() float64 {
		if s.connected.Load() {
			return 1
		}
		return 0
	})
	s.m.lag = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gridedge_sink_lag_records", ConstLabels: l,
		Help: "Results-feed records committed by the workers and not yet written by the sink."}, func() float64 {
		return float64(s.Lag())
	})
	s.m.rows = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gridedge_sink_rows_written_total", ConstLabels: l,
		Help: "Rows sent to the sink's tables in committed transactions, by table."}, []string{"table"})
	s.m.records = prometheus.NewCounter(prometheus.CounterOpts{Name: "gridedge_sink_records_total", ConstLabels: l,
		Help: "Results-feed records written (committed with the sink's position)."})
	s.m.txs = prometheus.NewCounter(prometheus.CounterOpts{Name: "gridedge_sink_transactions_total", ConstLabels: l,
		Help: "Transactions committed by the sink."})
	s.m.errors = prometheus.NewCounter(prometheus.CounterOpts{Name: "gridedge_sink_errors_total", ConstLabels: l,
		Help: "Failed sink operations (connection, migration, transaction); each is retried after a backoff."})
	s.m.resyncs = prometheus.NewCounter(prometheus.CounterOpts{Name: "gridedge_sink_resyncs_total", ConstLabels: l,
		Help: "Resynchronisations from the store's current state: a new database, or a position the feed's retention had trimmed."})
	s.m.skipped = prometheus.NewCounter(prometheus.CounterOpts{Name: "gridedge_sink_readings_skipped_total", ConstLabels: l,
		Help: "Raw readings not written: dated before the readings retention or more than 2 days ahead of the clock."})
	s.m.dropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "gridedge_sink_reading_partitions_dropped_total", ConstLabels: l,
		Help: "Day partitions of gridedge.readings dropped by the readings retention."})
}

// Metrics returns the sink's metrics for a registry.
func (s *Sink) Metrics() []prometheus.Collector {
	return []prometheus.Collector{s.m.connected, s.m.lag, s.m.rows, s.m.records, s.m.txs, s.m.errors, s.m.resyncs, s.m.skipped, s.m.dropped}
}

// Lag is the number of feed records not yet written, over the partitions
// whose position is known.
func (s *Sink) Lag() uint64 {
	var lag uint64
	for p := range s.pos {
		if s.known[p].Load() {
			if next, pos := s.src.Next(p), s.pos[p].Load(); next > pos {
				lag += next - pos
			}
		}
	}
	return lag
}

// Position returns partition p's written position (ok once known).
func (s *Sink) Position(p int) (uint64, bool) { return s.pos[p].Load(), s.known[p].Load() }

// Run connects, migrates the schema and follows every partition of the
// feed until ctx ends. It returns nil when ctx ends; errors along the way
// are logged, counted and retried.
func (s *Sink) Run(ctx context.Context) error {
	defer s.pool.Close()
	var wg sync.WaitGroup
	wg.Go(func() { s.setup(ctx) })
	if s.readings {
		wg.Go(func() { s.dropLoop(ctx) })
	}
	for p := range s.src.Partitions() {
		wg.Go(func() { s.follow(ctx, p) })
	}
	wg.Wait()
	return nil
}

// setup applies the migrations, retrying until it succeeds.
func (s *Sink) setup(ctx context.Context) {
	s.retry(ctx, "migrate", func() error {
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		v, err := Migrate(ctx, conn.Conn())
		if err != nil {
			return err
		}
		s.log.Info("postgres sink connected", "url", Redact(s.url), "schema_version", v, "history", s.history)
		return nil
	})
	if ctx.Err() == nil {
		close(s.ready)
	}
}

// retry runs op until it succeeds or ctx ends, pausing with backoff after
// each failure.
func (s *Sink) retry(ctx context.Context, what string, op func() error) {
	wait := s.backoff0
	for ctx.Err() == nil {
		err := op()
		if err == nil {
			s.connected.Store(true)
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.fail(what, err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, s.backoffMax)
	}
}

// fail counts and logs an error; a connection error marks the sink
// disconnected.
func (s *Sink) fail(what string, err error) {
	s.m.errors.Inc()
	s.connected.Store(false)
	s.log.Warn("postgres sink: "+what+" failed; retrying", "err", err)
}

// follow writes partition p's feed records from the stored position.
func (s *Sink) follow(ctx context.Context, p int) {
	select {
	case <-ctx.Done():
		return
	case <-s.ready:
	}
	wait := s.backoff0
	for ctx.Err() == nil {
		err := s.followOnce(ctx, p, &wait)
		if err == nil || ctx.Err() != nil {
			return
		}
		s.fail(fmt.Sprintf("partition %d", p), err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, s.backoffMax)
	}
}

// followOnce loads the position from PostgreSQL and writes on from there
// until ctx ends (nil) or an operation fails. A committed transaction
// resets the backoff (*wait) to its first pause.
func (s *Sink) followOnce(ctx context.Context, p int, wait *time.Duration) error {
	pos, ok, err := s.loadPosition(ctx, p)
	if err != nil {
		return err
	}
	if !ok {
		s.log.Info("postgres sink: no position for this store's feed; copying the store's current state", "partition", p)
		if pos, err = s.resync(ctx, p); err != nil {
			return err
		}
	}
	s.setPos(p, pos)
	registered := false // this run has told the feed its cursor
	for ctx.Err() == nil {
		recs, err := s.src.Read(p, pos, s.batchMax)
		if errors.Is(err, feed.ErrTrimmed) {
			s.log.Error("postgres sink: the feed's retention deleted records this sink had not written; "+
				"resynchronising from the store's current results (revisions in between are not in result_history)",
				"partition", p, "position", pos, "err", err)
			if pos, err = s.resync(ctx, p); err != nil {
				return err
			}
			s.setPos(p, pos)
			continue
		}
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			// Register the cursor once, then sleep until a commit.
			if !registered {
				if err := s.src.Commit(Name, p, pos); err != nil {
					return err
				}
				registered = true
			}
			select {
			case <-ctx.Done():
				return nil
			case <-s.src.Wait(p, pos):
			}
			continue
		}
		b := newBatch()
		for i := range recs {
			b.add(&recs[i], s.history, s.readings)
		}
		next := pos + uint64(len(recs))
		if err := s.write(ctx, b, &position{s.src.ID(), p, next}, len(recs)); err != nil {
			return err
		}
		pos = next
		s.setPos(p, pos)
		*wait = s.backoff0
		if err := s.src.Commit(Name, p, pos); err != nil {
			return err
		}
		registered = true
	}
	return nil
}

func (s *Sink) setPos(p int, pos uint64) {
	s.pos[p].Store(pos)
	s.known[p].Store(true)
}

// txTimeout bounds one transaction: a PostgreSQL that hangs is treated as
// down, the transaction retried.
const txTimeout = time.Minute

// write commits one batch (with the position, when given) and counts it.
func (s *Sink) write(ctx context.Context, b *batch, pos *position, records int) error {
	tctx, cancel := context.WithTimeout(ctx, txTimeout)
	defer cancel()
	if len(b.readings) > 0 {
		var days map[time.Time]bool
		b.readings, days = s.keepReadings(b.readings, s.now())
		if err := s.ensurePartitions(tctx, days); err != nil {
			return err
		}
	}
	n, err := writeTx(tctx, s.pool, b, pos)
	if err != nil {
		if len(b.readings) > 0 {
			// A partition may have been dropped meanwhile: check them again.
			s.partMu.Lock()
			clear(s.partitions)
			s.partMu.Unlock()
		}
		return err
	}
	s.connected.Store(true)
	s.m.txs.Inc()
	s.m.records.Add(float64(records))
	for table, c := range map[string]int{"results": n.results, "result_history": n.history, "late_readings": n.late,
		"devices": n.devices, "device_status": n.statuses, "readings": n.readings} {
		if c > 0 {
			s.m.rows.WithLabelValues(table).Add(float64(c))
		}
	}
	return nil
}

func (s *Sink) loadPosition(ctx context.Context, p int) (uint64, bool, error) {
	tctx, cancel := context.WithTimeout(ctx, txTimeout)
	defer cancel()
	var next int64
	err := s.pool.QueryRow(tctx, "SELECT next_seq FROM gridedge.sink_positions WHERE source = $1 AND feed_partition = $2",
		s.src.ID(), p).Scan(&next)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("postgres: load position: %w", err)
	}
	s.connected.Store(true)
	return uint64(next), true, nil
}

// resync copies partition p's current state from the store, in batches,
// then stores the feed position of that state. A crash midway repeats it;
// the upserts make the repetition harmless.
func (s *Sink) resync(ctx context.Context, p int) (uint64, error) {
	s.m.resyncs.Inc()
	b, n := newBatch(), 0
	flush := func() error {
		if b.len() == 0 {
			return nil
		}
		err := s.write(ctx, b, nil, 0)
		b = newBatch()
		return err
	}
	next, err := s.src.Resync(ctx, p, func(r *feed.Record) error {
		b.add(r, s.history, s.readings)
		if n++; b.len() >= s.batchMax {
			return flush()
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if err := flush(); err != nil {
		return 0, err
	}
	if err := s.write(ctx, newBatch(), &position{s.src.ID(), p, next}, 0); err != nil {
		return 0, err
	}
	s.log.Info("postgres sink: resynchronised", "partition", p, "records", n, "position", next)
	return next, nil
}
