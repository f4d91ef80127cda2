package feed_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/feed"
	"github.com/gridedge/gridedge/cloud/intake"
	"github.com/gridedge/gridedge/cloud/readlog/local"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/cloud/worker"
	"github.com/gridedge/gridedge/shared/poll"
	"github.com/gridedge/gridedge/shared/wire"
)

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func openStore(t *testing.T, dir string, r store.FeedRetention, opts ...store.Option) *store.Store {
	t.Helper()
	st, err := store.Open(dir, append([]store.Option{store.WithFeed(r), store.WithSync(false)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func result(dev string, minute int, rev uint32) window.Result {
	return window.Result{Pipeline: "p", Key: window.Key{Device: dev, Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER},
		Start: t0.Add(time.Duration(minute) * time.Minute).UnixNano(), End: t0.Add(time.Duration(minute+1) * time.Minute).UnixNano(),
		Revision: rev, Names: []string{"mean"}, Values: []float64{float64(minute)}, Count: 6, Coverage: 1}
}

func put(t *testing.T, st *store.Store, p int, out window.Output) {
	t.Helper()
	b := st.NewBatch(p)
	if err := b.PutOutput(out); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

// readAll reads partition p of src from `from` to its current end.
func readAll(t *testing.T, src feed.Source, p int, from uint64) ([]feed.Record, uint64, error) {
	t.Helper()
	var out []feed.Record
	for {
		rs, err := src.Read(p, from, 0)
		if err != nil {
			return out, from, err
		}
		if len(rs) == 0 {
			return out, from, nil
		}
		for _, r := range rs {
			if r.Seq != from {
				t.Fatalf("record seq %d, want %d (no gaps)", r.Seq, from)
			}
			from++
		}
		out = append(out, rs...)
	}
}

func TestRecordRoundTripAndBadRecords(t *testing.T) {
	st := openStore(t, t.TempDir(), store.FeedRetention{})
	defer st.Close()
	put(t, st, 0, window.Output{Results: []window.Result{result("d1", 0, 1)}})
	src := feed.NewLocal(st, 1)
	rs, _, err := readAll(t, src, 0, 0)
	if err != nil || len(rs) != 1 {
		t.Fatalf("%d records, %v", len(rs), err)
	}
	b, err := feed.Encode(&rs[0])
	if err != nil {
		t.Fatal(err)
	}
	got, err := feed.Decode(b)
	if err != nil || got.Kind != feed.KindResult || got.Result.Device != "d1" || got.Result.Values["mean"] != 0 || got.Source != st.ID() {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{``, `{}`, `{"v":2,"kind":"result","result":{}}`, `{"v":1,"kind":"nope"}`,
		`{"v":1,"kind":"result"}`, `{"v":1,"kind":"late","result":{}}`, `{"v":1,"kind":"device","device":{}}`,
		`{"v":1,"kind":"result","result":{},"late":{}}`, `[1,2]`, `{"v":1,"kind":"status","status":{"device":""}}`} {
		if _, err := feed.Decode([]byte(bad)); !errors.Is(err, feed.ErrBadRecord) {
			t.Errorf("Decode(%s) = %v, want ErrBadRecord", bad, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"v":1,"kind":"result","partition":0,"seq":3,"result":{"pipeline":"p","device":"d","values":{"mean":1}}}`))
	f.Add([]byte(`{"v":1,"kind":"status","status":{"device":"d","online":true}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := feed.Decode(b)
		if err != nil {
			return
		}
		if _, err := feed.Encode(&r); err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
	})
}

// A worker's commits feed every result revision, late reading, device and
// status: applying the feed's results (highest revision wins) gives the
// store's results.
func TestWorkerCommitsFeedEverything(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "store"), store.FeedRetention{}, store.WithFeedReadings())
	defer st.Close()
	lg, err := local.Open(filepath.Join(dir, "log"), local.WithPartitions(1), local.WithConsumers(worker.Group), local.WithCommitInterval(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	pipe := window.Pipeline{Name: "p1m", Inputs: []window.Selector{{Quantity: "active_power"}},
		Window: window.WindowSpec{Kind: window.Tumbling, Size: time.Minute}, TimeZone: "UTC",
		Aggregations:    []window.Aggregation{{Name: "count", Func: window.Count}, {Name: "mean", Func: window.Mean}},
		AllowedLateness: time.Minute, IdleTimeout: time.Hour}
	wk, err := worker.New(worker.Config{Partition: 0, Log: lg, Store: st, Pipelines: []window.Pipeline{pipe},
		CommitInterval: 5 * time.Millisecond, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wk.Run(ctx) }()
	defer func() { cancel(); <-done }()
	appendRec := func(kind intake.Kind, dev string, payload []byte) {
		ch := make(chan error, 1)
		rec := intake.AppendRecord(nil, intake.Record{Kind: kind, ReceivedNs: t0.Add(time.Hour).UnixNano(), Site: "s", Payload: payload})
		if err := lg.Append(context.Background(), 0, []byte(dev), rec, func(_ int64, err error) { ch <- err }); err != nil {
			t.Fatal(err)
		}
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	batch := func(dev string, seqs ...uint64) {
		b := &wire.Batch{SchemaVersion: wire.SchemaVersion, DeviceId: dev, SeqEpoch: 7}
		for _, s := range seqs {
			b.Readings = append(b.Readings, &wire.Reading{Seq: s, Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER,
				Value: float64(s), WallNs: t0.Add(time.Duration(s) * 10 * time.Second).UnixNano(), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED})
		}
		p, err := wire.EncodeBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		appendRec(intake.KindData, dev, p)
	}
	for _, d := range []string{"a", "b"} {
		p, _ := wire.EncodeStatus(&wire.Status{SchemaVersion: wire.SchemaVersion, DeviceId: d, Online: true, TimeZone: "UTC"})
		appendRec(intake.KindStatus, d, p)
		var seqs []uint64
		for s := uint64(1); s <= 60; s++ {
			seqs = append(seqs, s)
		}
		batch(d, seqs...)
	}
	batch("a", 61) // closes minute windows
	batch("a", 200)
	batch("a", 3000) // far ahead: a later reading for an old window is late
	batch("a", 62)
	poll.Until(t, 30*time.Second, "every record committed", func() bool { return wk.Stats().Committed == 8 })

	src := feed.NewLocal(st, 1)
	rs, _, err := readAll(t, src, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	latest := map[string]*store.WindowResult{}
	kinds := map[feed.Kind]int{}
	for i := range rs {
		r := &rs[i]
		kinds[r.Kind]++
		if r.Kind == feed.KindResult {
			k := fmt.Sprint(r.Result.Pipeline, r.Result.Device, r.Result.Channel, r.Result.Quantity, r.Result.Start)
			if old := latest[k]; old == nil || old.Revision < r.Result.Revision {
				latest[k] = r.Result
			}
		}
	}
	n := 0
	err = st.Results(store.ResultQuery{Pipeline: "p1m"}, func(w *store.WindowResult) error {
		n++
		k := fmt.Sprint(w.Pipeline, w.Device, w.Channel, w.Quantity, w.Start)
		if got := latest[k]; got == nil || got.Revision != w.Revision || got.Values["mean"] != w.Values["mean"] {
			t.Errorf("store result %s rev %d, feed has %+v", k, w.Revision, got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || n != len(latest) {
		t.Fatalf("store has %d results, feed %d", n, len(latest))
	}
	if kinds[feed.KindLate] == 0 || kinds[feed.KindDevice] < 2 || kinds[feed.KindStatus] != 2 {
		t.Fatalf("record kinds %v: want late readings, devices and both statuses", kinds)
	}
	if stored := wk.Stats().Stored; kinds[feed.KindReading] != int(stored) || stored != 124 {
		t.Fatalf("%d raw readings fed, %d stored, want 124 each", kinds[feed.KindReading], stored)
	}
	// A resync with raw readings sends those of the age asked for: the
	// readings from t0+5m on (2 devices × 31 and a's 4 later ones).
	withReadings := feed.NewLocal(st, 1, feed.WithResyncReadings(55*time.Minute), feed.WithLocalClock(func() time.Time { return t0.Add(time.Hour) }))
	resynced := 0
	if _, err := withReadings.Resync(context.Background(), 0, func(r *feed.Record) error {
		if r.Kind == feed.KindReading {
			resynced++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if resynced != 2*31+4 {
		t.Fatalf("resync sent %d raw readings, want 66", resynced)
	}
}

// Writers committing to one partition at once get contiguous sequences.
func TestConcurrentWritersGetContiguousSequences(t *testing.T) {
	st := openStore(t, t.TempDir(), store.FeedRetention{})
	defer st.Close()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				put(t, st, 0, window.Output{Results: []window.Result{result(fmt.Sprint("w", w), i, 1), result(fmt.Sprint("w", w), i, 2)}})
			}
		})
	}
	wg.Wait()
	rs, next, err := readAll(t, feed.NewLocal(st, 1), 0, 0)
	if err != nil || len(rs) != 400 || next != 400 {
		t.Fatalf("%d records up to %d, %v; want 400", len(rs), next, err)
	}
}

// Wait's channel is open until a commit adds a record at the cursor, and
// is closed by that commit.
func TestWaitIsWokenByACommit(t *testing.T) {
	st := openStore(t, t.TempDir(), store.FeedRetention{})
	defer st.Close()
	src := feed.NewLocal(st, 2)
	ch := src.Wait(1, 0)
	select {
	case <-ch:
		t.Fatal("Wait returned before anything was committed")
	default:
	}
	put(t, st, 0, window.Output{Results: []window.Result{result("x", 0, 1)}}) // another partition
	select {
	case <-ch:
		t.Fatal("a commit to partition 0 woke a reader of partition 1")
	default:
	}
	put(t, st, 1, window.Output{Results: []window.Result{result("x", 0, 1)}})
	<-ch
	select {
	case <-src.Wait(1, 0):
	default:
		t.Fatal("Wait at a held record must return at once")
	}
}

// The feed is trimmed below the lowest registered cursor, and its next
// sequence survives a restart with every record trimmed.
func TestTrimBelowLowestCursor(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir, store.FeedRetention{})
	for i := range 10 {
		put(t, st, 0, window.Output{Results: []window.Result{result("d", i, 1)}})
	}
	src := feed.NewLocal(st, 1)
	if err := src.Commit("a", 0, 4); err != nil {
		t.Fatal(err)
	}
	if err := src.Commit("b", 0, 7); err != nil {
		t.Fatal(err)
	}
	if s := st.FeedStats(0); s.First != 4 || s.Next != 10 || s.Trimmed != 0 {
		t.Fatalf("stats %+v, want records 4..9 kept", s)
	}
	if _, err := src.Read(0, 3, 0); !errors.Is(err, feed.ErrTrimmed) {
		t.Fatalf("read below the feed: %v, want ErrTrimmed", err)
	}
	if err := src.Commit("a", 0, 10); err != nil {
		t.Fatal(err)
	}
	if err := src.Commit("b", 0, 10); err != nil {
		t.Fatal(err)
	}
	if s := st.FeedStats(0); s.First != 10 || s.Bytes != 0 {
		t.Fatalf("stats %+v, want every record trimmed", s)
	}
	st.Close()
	st = openStore(t, dir, store.FeedRetention{})
	defer st.Close()
	put(t, st, 0, window.Output{Results: []window.Result{result("d", 99, 1)}})
	rs, next, err := readAll(t, feed.NewLocal(st, 1), 0, 10)
	if err != nil || len(rs) != 1 || next != 11 {
		t.Fatalf("after restart: %d records up to %d, %v; want seq 10", len(rs), next, err)
	}
	// No sink registered: TrimFeed keeps nothing.
	if err := st.DropFeedCursor("a"); err != nil {
		t.Fatal(err)
	}
	if err := st.DropFeedCursor("b"); err != nil {
		t.Fatal(err)
	}
	if err := st.TrimFeed(time.Now()); err != nil {
		t.Fatal(err)
	}
	if s := st.FeedStats(0); s.First != 11 || s.Bytes != 0 {
		t.Fatalf("stats %+v, want nothing kept without a sink", s)
	}
}

// A sink that stopped following cannot fill the disk: the byte bound
// holds, the records it missed are counted as trimmed, its read says
// ErrTrimmed, and Resync gives it the current state of every window so
// nothing is lost.
func TestByteBoundAndResync(t *testing.T) {
	const maxBytes = 16 << 10
	st := openStore(t, t.TempDir(), store.FeedRetention{MaxBytes: maxBytes})
	defer st.Close()
	src := feed.NewLocal(st, 2)
	if err := src.Commit("gone", 0, 0); err != nil {
		t.Fatal(err)
	}
	devs := []string{"dev-a", "dev-b", "dev-c", "dev-d", "dev-e", "dev-f"}
	for i := range 200 {
		var out window.Output
		for _, d := range devs {
			out.Results = append(out.Results, result(d, i%20, uint32(i/20+1)))
		}
		put(t, st, 0, out)
		if b := st.FeedStats(0).Bytes; b > maxBytes {
			t.Fatalf("feed holds %d bytes, bound %d", b, maxBytes)
		}
	}
	s := st.FeedStats(0)
	if s.First == 0 || s.Trimmed == 0 {
		t.Fatalf("stats %+v: want old records trimmed and counted", s)
	}
	if _, err := src.Read(0, 0, 0); !errors.Is(err, feed.ErrTrimmed) {
		t.Fatalf("read at the gone sink's cursor: %v, want ErrTrimmed", err)
	}
	// Resync sees every current window (highest revision) of the devices
	// of the partition asked for.
	got := map[string]uint32{}
	next, err := src.Resync(context.Background(), 0, func(r *feed.Record) error {
		if !r.Resync || r.Kind != feed.KindResult {
			t.Fatalf("resync record %+v", r)
		}
		got[fmt.Sprint(r.Result.Device, r.Result.Start)] = r.Result.Revision
		return nil
	})
	if err != nil || next != s.Next {
		t.Fatalf("resync: next %d (feed next %d), %v", next, s.Next, err)
	}
	want := 0
	err = st.Results(store.ResultQuery{Pipeline: "p"}, func(w *store.WindowResult) error {
		if feedPartition(w.Device) != 0 {
			return nil
		}
		want++
		if got[fmt.Sprint(w.Device, w.Start)] != w.Revision {
			t.Errorf("resync of %s %v: rev %d, store %d", w.Device, w.Start, got[fmt.Sprint(w.Device, w.Start)], w.Revision)
		}
		return nil
	})
	if err != nil || want == 0 || want != len(got) {
		t.Fatalf("resync gave %d windows, store has %d of partition 0 (%v)", len(got), want, err)
	}
	// A cursor from another store (beyond the end) is not waited on forever.
	if _, err := src.Read(0, s.Next+5, 0); !errors.Is(err, feed.ErrTrimmed) {
		t.Fatalf("read beyond the end: %v, want ErrTrimmed", err)
	}
}

func feedPartition(dev string) int {
	return readlogPartition(dev, 2)
}

// Records older than the age bound go at the next TrimFeed, even when a
// registered sink has not read them.
func TestAgeBound(t *testing.T) {
	st := openStore(t, t.TempDir(), store.FeedRetention{MaxAge: time.Hour})
	defer st.Close()
	src := feed.NewLocal(st, 1)
	if err := src.Commit("slow", 0, 0); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		put(t, st, 0, window.Output{Results: []window.Result{result("d", i, 1)}})
	}
	if err := st.TrimFeed(time.Now()); err != nil {
		t.Fatal(err)
	}
	if s := st.FeedStats(0); s.First != 0 {
		t.Fatalf("stats %+v: records within the age bound trimmed", s)
	}
	if err := st.TrimFeed(time.Now().Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if s := st.FeedStats(0); s.First != 5 || s.Bytes != 0 || s.Trimmed != 5 {
		t.Fatalf("stats %+v: want the 5 old records trimmed and counted", s)
	}
}

// A store reopened without the feed (its sink was removed from the
// configuration) drops what the feed still held at the next TrimFeed.
func TestFeedOffDropsLeftovers(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir, store.FeedRetention{})
	src := feed.NewLocal(st, 1)
	if err := src.Commit("gone", 0, 0); err != nil {
		t.Fatal(err)
	}
	put(t, st, 0, window.Output{Results: []window.Result{result("d", 0, 1)}})
	st.Close()
	st, err := store.Open(dir, store.WithSync(false))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	put(t, st, 0, window.Output{Results: []window.Result{result("d", 1, 1)}})
	if s := st.FeedStats(0); s.Next != 1 || s.Bytes == 0 {
		t.Fatalf("stats %+v: want the one record written with the feed on", s)
	}
	if err := st.TrimFeed(time.Now()); err != nil {
		t.Fatal(err)
	}
	if s := st.FeedStats(0); s.First != 1 || s.Bytes != 0 {
		t.Fatalf("stats %+v: want nothing kept with the feed off", s)
	}
}
