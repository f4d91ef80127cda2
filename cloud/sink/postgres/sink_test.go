package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gridedge/gridedge/cloud/feed"
	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/cloud/sink/postgres"
	"github.com/gridedge/gridedge/cloud/sink/postgres/pgsinktest"
	"github.com/gridedge/gridedge/cloud/sink/postgres/pgtest"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/poll"
	"github.com/gridedge/gridedge/shared/wire"
)

const parts = 2

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func openStore(t testing.TB, r store.FeedRetention) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.WithFeed(r), store.WithSync(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func result(dev string, minute int, rev uint32, v float64) window.Result {
	return window.Result{Pipeline: "p", Key: window.Key{Device: dev, Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER},
		Start: t0.Add(time.Duration(minute) * time.Minute).UnixNano(), End: t0.Add(time.Duration(minute+1) * time.Minute).UnixNano(),
		Revision: rev, Names: []string{"mean", "max"}, Values: []float64{v, v + 1}, Count: 6, Coverage: 1}
}

// commit writes results, a late reading and device rows of dev into the
// store, as a worker's commit would, to dev's partition.
func commit(t testing.TB, st *store.Store, dev string, rs ...window.Result) {
	t.Helper()
	p := readlog.PartitionFor([]byte(dev), parts)
	b := st.NewBatch(p)
	out := window.Output{Results: rs, Late: []window.LateReading{{Pipeline: "p", Reading: window.Reading{Device: dev, Channel: "mains",
		Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, TimeNs: rs[0].Start, Value: 1, SeqEpoch: 1 << 63, Seq: uint64(rs[0].Start)},
		Windows: []window.Span{{Start: rs[0].Start, End: rs[0].End}}}}}
	if err := b.PutOutput(out); err != nil {
		t.Fatal(err)
	}
	if err := b.PutDevice(&store.DeviceInfo{ID: dev, Site: "s", LastSeen: t0, ReadingsStored: uint64(rs[0].Start)}); err != nil {
		t.Fatal(err)
	}
	if err := b.PutStatus(store.Status{Device: dev, Site: "s", Received: t0, Online: true, ClockQuality: "synced"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

type running struct {
	sink *postgres.Sink
	reg  *prometheus.Registry
	stop func()
}

func run(t testing.TB, src feed.Source, url string, opts ...postgres.Option) *running {
	t.Helper()
	opts = append([]postgres.Option{postgres.WithBackoff(20*time.Millisecond, 200*time.Millisecond),
		postgres.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	s, err := postgres.New(src, url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Metrics()...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	var once sync.Once
	r := &running{sink: s, reg: reg, stop: func() { once.Do(func() { cancel(); <-done }) }}
	t.Cleanup(r.stop)
	return r
}

// caughtUp waits until the sink has written every partition's feed.
func (r *running) caughtUp(t testing.TB, src feed.Source) {
	t.Helper()
	poll.Until(t, time.Minute, "the sink caught up with the feed", func() bool {
		for p := range src.Partitions() {
			if pos, ok := r.sink.Position(p); !ok || pos != src.Next(p) {
				return false
			}
		}
		return true
	})
}

func query(t testing.TB, url, sql string, args ...any) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// Migrations create the schema from an empty database, a second run
// changes nothing, and a database of a newer schema is refused.
func TestMigrationsFromEmpty(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB("m")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	ms, err := postgres.Migrations()
	if err != nil || len(ms) == 0 {
		t.Fatalf("migrations %v, %v", ms, err)
	}
	for range 2 {
		v, err := postgres.Migrate(ctx, conn)
		if err != nil || v != len(ms) {
			t.Fatalf("Migrate = %d, %v; want %d", v, err, len(ms))
		}
	}
	if n := query(t, url, "SELECT count(*) FROM public.gridedge_schema_migrations"); n != int64(len(ms)) {
		t.Fatalf("%d migration rows, want %d", n, len(ms))
	}
	for _, table := range []string{"results", "result_history", "late_readings", "devices", "device_status", "sink_positions"} {
		query(t, url, "SELECT count(*) FROM gridedge."+table)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO public.gridedge_schema_migrations (version, name) VALUES (999, 'future')"); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Migrate(ctx, conn); err == nil {
		t.Fatal("a database of a newer schema was accepted")
	}
}

// A lower revision arriving after a higher one never overwrites it; with
// history every revision is kept once.
func TestUpsertKeepsHighestRevision(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB("u")
	st := openStore(t, store.FeedRetention{})
	src := feed.NewLocal(st, parts)
	r := run(t, src, url, postgres.WithHistory(true))
	r.caughtUp(t, src) // positions set on the empty store: every revision comes through the feed
	commit(t, st, "d1", result("d1", 0, 1, 10), result("d1", 0, 3, 30), result("d1", 1, 1, 5))
	r.caughtUp(t, src)
	commit(t, st, "d1", result("d1", 0, 2, 20)) // late and lower: must not win
	r.caughtUp(t, src)
	if rev := query(t, url, "SELECT revision FROM gridedge.results WHERE device = 'd1' AND window_start = $1", t0); rev != 3 {
		t.Fatalf("revision %d kept, want 3", rev)
	}
	if v := query(t, url, "SELECT (aggregates->>'mean')::int8 FROM gridedge.results WHERE device = 'd1' AND window_start = $1", t0); v != 30 {
		t.Fatalf("mean %d kept, want revision 3's 30", v)
	}
	if n := query(t, url, "SELECT count(*) FROM gridedge.result_history"); n != 4 {
		t.Fatalf("%d history rows, want 4 revisions", n)
	}
	if n := query(t, url, "SELECT count(*) FROM gridedge.late_readings WHERE seq_epoch = 9223372036854775808"); n != 1 {
		t.Fatalf("%d late readings with the 64-bit epoch, want 1 (written once)", n)
	}
	if n := query(t, url, "SELECT count(*) FROM gridedge.devices d JOIN gridedge.device_status s USING (device)"); n != 1 {
		t.Fatalf("%d devices with status, want 1", n)
	}
}

// crashingSource makes the sink "crash" (its context ends) right after
// PostgreSQL committed a transaction and before the feed learns of it.
type crashingSource struct {
	feed.Source
	commits atomic.Int64
	after   int64
	crash   func()
}

func (c *crashingSource) Commit(sink string, p int, next uint64) error {
	if c.commits.Add(1) == c.after {
		c.crash()
		return context.Canceled
	}
	return c.Source.Commit(sink, p, next)
}

// Crashes between transactions lose and repeat nothing: every change of
// the sink's position (recorded by a trigger, in the transactions that
// write the rows) continues exactly where the previous one ended, up to the
// end of the feed, and PostgreSQL equals the store.
func TestExactlyOnceAcrossSinkCrashes(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB("x")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := postgres.Migrate(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE position_log (id serial PRIMARY KEY, part int, old bigint, new bigint);
		CREATE FUNCTION log_position() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF TG_OP = 'INSERT' THEN INSERT INTO position_log (part, old, new) VALUES (NEW.feed_partition, NULL, NEW.next_seq);
			ELSE INSERT INTO position_log (part, old, new) VALUES (NEW.feed_partition, OLD.next_seq, NEW.next_seq);
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER log_position AFTER INSERT OR UPDATE ON gridedge.sink_positions FOR EACH ROW EXECUTE FUNCTION log_position();`); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, store.FeedRetention{})
	src := feed.NewLocal(st, parts)
	// Positions set on the empty store: every record comes through the feed.
	first := run(t, src, url)
	first.caughtUp(t, src)
	first.stop()
	for round := range 4 {
		for d := range 20 {
			dev := fmt.Sprintf("dev-%02d", d)
			commit(t, st, dev, result(dev, round, 2, float64(round)), result(dev, round+1, 1, 1))
		}
		cs := &crashingSource{Source: src, after: 2 + int64(round)}
		s, err := postgres.New(cs, url, postgres.WithBatch(7), postgres.WithBackoff(10*time.Millisecond, 50*time.Millisecond),
			postgres.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(context.Background())
		cs.crash = cancel
		if err := s.Run(rctx); err != nil {
			t.Fatal(err)
		}
	}
	// A last run without a crash finishes the feed.
	r := run(t, src, url, postgres.WithBatch(7))
	r.caughtUp(t, src)
	rows, err := conn.Query(ctx, "SELECT part, coalesce(old, -1), new FROM position_log ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	at := map[int]int64{}
	steps := 0
	for rows.Next() {
		var p int
		var old, next int64
		if err := rows.Scan(&p, &old, &next); err != nil {
			t.Fatal(err)
		}
		last, seen := at[p]
		switch {
		case !seen && (old != -1 || next != 0):
			t.Fatalf("partition %d starts at %d..%d, want a new position 0", p, old, next)
		case seen && (old != last || next <= old):
			t.Fatalf("partition %d: position moved %d..%d after %d: a range written twice or skipped", p, old, next, last)
		}
		at[p] = next
		steps++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for p := range parts {
		if at[p] != int64(src.Next(p)) {
			t.Fatalf("partition %d: position %d, feed end %d", p, at[p], src.Next(p))
		}
	}
	if steps < 20 {
		t.Fatalf("%d position changes: the batches were not small", steps)
	}
	pgsinktest.RequireEqual(t, url, st, "p")
	if n := query(t, url, "SELECT count(*) FROM gridedge.late_readings"); n != 20*4 {
		t.Fatalf("%d late readings, want 80", n)
	}
}

func counter(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				if m.Counter != nil {
					v += m.Counter.GetValue()
				} else if m.Gauge != nil {
					v += m.Gauge.GetValue()
				}
			}
		}
	}
	return v
}

// PostgreSQL killed: commits go on, the sink says it is disconnected and
// counts errors, and after the restart it catches up to equal the store.
func TestPostgresKilledThenBack(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB("k")
	st := openStore(t, store.FeedRetention{})
	src := feed.NewLocal(st, parts)
	r := run(t, src, url)
	commit(t, st, "a", result("a", 0, 1, 1))
	commit(t, st, "b", result("b", 0, 1, 1))
	r.caughtUp(t, src)
	pg.Kill()
	for i := range 50 {
		dev := fmt.Sprintf("dev-%02d", i)
		commit(t, st, dev, result(dev, i, 1, float64(i))) // returns: nothing waits for PostgreSQL
	}
	poll.Until(t, time.Minute, "the sink noticed PostgreSQL is down", func() bool {
		return counter(t, r.reg, "gridedge_sink_connected") == 0 && counter(t, r.reg, "gridedge_sink_errors_total") > 0
	})
	if lag := testutil.ToFloat64(r.sink.Metrics()[1]); lag == 0 {
		t.Fatal("no lag reported while PostgreSQL is down")
	}
	pg.Restart()
	r.caughtUp(t, src)
	if counter(t, r.reg, "gridedge_sink_connected") != 1 {
		t.Fatal("not connected after catching up")
	}
	pgsinktest.RequireEqual(t, url, st, "p")
}

// A sink away past the feed's retention finds its position trimmed, says
// so (resync counted) and resynchronises: PostgreSQL equals the store.
func TestTrimmedPositionResyncs(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB("r")
	st := openStore(t, store.FeedRetention{MaxBytes: 8 << 10})
	src := feed.NewLocal(st, parts)
	r := run(t, src, url)
	commit(t, st, "a", result("a", 0, 1, 1))
	r.caughtUp(t, src)
	if n := counter(t, r.reg, "gridedge_sink_resyncs_total"); n != parts {
		t.Fatalf("%v resyncs for a new database, want one per partition", n)
	}
	r.stop()
	for i := range 300 {
		dev := fmt.Sprintf("dev-%02d", i%30)
		commit(t, st, dev, result(dev, i%7, uint32(i/7+1), float64(i)))
	}
	var trimmed uint64
	for p := range parts {
		trimmed += st.FeedStats(p).Trimmed
	}
	if trimmed == 0 {
		t.Fatal("the byte bound trimmed nothing")
	}
	r = run(t, src, url)
	r.caughtUp(t, src)
	if n := counter(t, r.reg, "gridedge_sink_resyncs_total"); n == 0 {
		t.Fatal("no resync after the position was trimmed")
	}
	pgsinktest.RequireEqual(t, url, st, "p")
}

// Raw readings go to day partitions created on demand; readings before the
// retention or far ahead are skipped (counted); partitions wholly past the
// retention are dropped.
func TestReadingsInDayPartitions(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.CreateDB("w")
	st, err := store.Open(t.TempDir(), store.WithFeed(store.FeedRetention{}), store.WithFeedReadings(), store.WithSync(false))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	src := feed.NewLocal(st, parts)
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	r := run(t, src, url, postgres.WithReadings(3*24*time.Hour), postgres.WithClock(func() time.Time { return time.Unix(0, clock.Load()) }))
	r.caughtUp(t, src) // positions on the empty store: raw readings are not resynchronised
	var rs []store.RawReading
	for h := -24 * 5; h <= 24*4; h += 6 { // 5 days back to 4 ahead
		rs = append(rs, store.RawReading{Device: "d", Channel: "mains", Quantity: "active_power", Time: now.Add(time.Duration(h) * time.Hour),
			Value: float64(h), TimeQuality: "synced", SeqEpoch: 1 << 63, Seq: uint64(h + 1000), Received: now})
	}
	rs[len(rs)-1].Flags = []string{"future"}
	b := st.NewBatch(readlog.PartitionFor([]byte("d"), parts))
	if err := b.FeedReadings(rs); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	r.caughtUp(t, src)
	// Kept: from 2026-11-24 00:00 (3 days back, by day) to before 2026-11-30.
	want := 0
	for _, x := range rs {
		if !x.Time.Before(time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)) && x.Time.Before(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)) {
			want++
		}
	}
	if got := query(t, url, "SELECT count(*) FROM gridedge.readings"); got != int64(want) {
		t.Fatalf("%d readings written, want %d", got, want)
	}
	if got := counter(t, r.reg, "gridedge_sink_readings_skipped_total"); int(got) != len(rs)-want {
		t.Fatalf("%v readings skipped, want %d", got, len(rs)-want)
	}
	if got := query(t, url, "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'readings'"); got != 6 {
		t.Fatalf("%d day partitions, want 6 (24th to 29th)", got)
	}
	// Two days later the 24th and 25th are past the retention.
	clock.Store(now.Add(48 * time.Hour).UnixNano())
	n, err := r.sink.DropOldReadings(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("dropped %d partitions, %v; want 2", n, err)
	}
	if got := query(t, url, "SELECT count(*) FROM gridedge.readings WHERE reading_time < '2026-11-26'"); got != 0 {
		t.Fatalf("%d readings left before the retention", got)
	}
}

// A password in the URL never reaches a log line.
func TestRedact(t *testing.T) {
	for _, u := range []string{"postgres://gridedge:s3cret@db:5432/g", "postgres://gridedge@db/g?sslmode=require&password=s3cret"} {
		if r := postgres.Redact(u); strings.Contains(r, "s3cret") || !strings.Contains(r, "db") {
			t.Errorf("Redact(%q) = %q", u, r)
		}
	}
	if _, err := postgres.New(feed.NewLocal(openStore(t, store.FeedRetention{}), 1), "postgres://u:s3cret@[bad"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad URL error %v", err)
	}
}
