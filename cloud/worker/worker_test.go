package worker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/intake"
	"github.com/gridedge/gridedge/cloud/readlog/local"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/poll"
	"github.com/gridedge/gridedge/shared/wire"
)

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

type rig struct {
	t    *testing.T
	cfg  Config
	dir  string
	log  *local.Log
	st   *store.Store
	now  atomic.Int64
	wk   *Worker
	stop func()
}

func minutePipeline() window.Pipeline {
	return window.Pipeline{Name: "p1m", Inputs: []window.Selector{{Quantity: "active_power"}},
		Window: window.WindowSpec{Kind: window.Tumbling, Size: time.Minute}, TimeZone: "UTC",
		Aggregations:    []window.Aggregation{{Name: "count", Func: window.Count}, {Name: "mean", Func: window.Mean}},
		AllowedLateness: time.Hour, IdleTimeout: 30 * time.Second}
}

func newRig(t *testing.T, grace time.Duration, opts ...func(*Config)) *rig {
	t.Helper()
	r := &rig{t: t, dir: t.TempDir()}
	var err error
	if r.st, err = store.Open(filepath.Join(r.dir, "store")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.st.Close() })
	if r.log, err = local.Open(filepath.Join(r.dir, "log"), local.WithPartitions(1), local.WithConsumers(Group),
		local.WithCommitInterval(5*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.log.Close() })
	r.now.Store(t0.UnixNano())
	cfg := Config{Partition: 0, Log: r.log, Store: r.st, Pipelines: []window.Pipeline{minutePipeline()},
		CommitInterval: 5 * time.Millisecond, ZoneGrace: grace, Now: func() time.Time { return time.Unix(0, r.now.Load()) }}
	for _, o := range opts {
		o(&cfg)
	}
	r.cfg = cfg
	r.run()
	return r
}

// run starts a worker restored from the stored state.
func (r *rig) run() {
	t := r.t
	var err error
	if r.wk, err = New(r.cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.wk.Run(ctx) }()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(r.stop)
}

func (r *rig) append(kind intake.Kind, device string, payload []byte) {
	r.t.Helper()
	done := make(chan error, 1)
	rec := intake.AppendRecord(nil, intake.Record{Kind: kind, ReceivedNs: r.now.Load(), Site: "s", Payload: payload})
	if err := r.log.Append(context.Background(), 0, []byte(device), rec, func(_ int64, err error) { done <- err }); err != nil {
		r.t.Fatal(err)
	}
	if err := <-done; err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) batch(device string, first uint64, n int) {
	r.t.Helper()
	b := &wire.Batch{SchemaVersion: wire.SchemaVersion, DeviceId: device, SeqEpoch: 7}
	for i := range n {
		seq := first + uint64(i)
		b.Readings = append(b.Readings, &wire.Reading{Seq: seq, Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER,
			Value: float64(seq % 100), WallNs: t0.Add(time.Duration(seq) * time.Second).UnixNano(), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED})
	}
	p, err := wire.EncodeBatch(b)
	if err != nil {
		r.t.Fatal(err)
	}
	r.append(intake.KindData, device, p)
}

func (r *rig) status(device string) {
	p, _ := wire.EncodeStatus(&wire.Status{SchemaVersion: wire.SchemaVersion, DeviceId: device, Online: true, TimeZone: "Europe/Paris"})
	r.append(intake.KindStatus, device, p)
}

func (r *rig) waitFor(what string, cond func(Stats) bool) Stats {
	r.t.Helper()
	return poll.For(r.t, 30*time.Second, what, func() (Stats, error) { return r.wk.Stats(), nil }, cond)
}

// files lists the store's and log's files with size and modification time.
func files(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || filepath.Base(p) == "LOCK" {
			return err
		}
		out = append(out, fmt.Sprintf("%s %d %d", p, fi.Size(), fi.ModTime().UnixNano()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return fmt.Sprint(out)
}

// After a load, an idle worker commits nothing and no file of the store or
// the log changes, however many commit intervals pass.
func TestIdleWorkerWritesNothing(t *testing.T) {
	r := newRig(t, 0)
	for d := range 50 {
		r.batch(fmt.Sprintf("dev-%02d", d), 1, 100)
	}
	r.waitFor("every reading committed", func(s Stats) bool { return s.Stored == 5000 && s.Committed == 50 })
	// Past every idle timeout: each device's open window is emitted once,
	// provisionally, then nothing changes any more.
	r.now.Add(int64(time.Hour))
	settled := r.waitFor("provisional results committed", func(s Stats) bool { return s.Engine.Provisional >= 50 && s.Ticks > 0 })
	// Pebble may flush or compact once after the last commit: let it settle.
	r.waitFor("a few idle cycles", func(s Stats) bool { return s.Ticks >= settled.Ticks+20 })
	before, commits := files(t, r.dir), r.wk.Stats().Commits
	idle := r.wk.Stats().Ticks
	r.now.Add(int64(time.Hour))
	after := r.waitFor("200 more idle cycles", func(s Stats) bool { return s.Ticks >= idle+200 })
	if after.Commits != commits {
		t.Fatalf("%d commits while idle", after.Commits-commits)
	}
	if got := files(t, r.dir); got != before {
		t.Fatalf("files changed while idle:\nbefore %s\nafter  %s", before, got)
	}
}

// Thirty new devices waiting for their status never hold back a device
// already known: its readings are stored and windowed while they wait.
func TestNewDevicesDoNotDelayAnExistingOne(t *testing.T) {
	r := newRig(t, time.Hour)
	r.status("old")
	r.batch("old", 1, 60)
	r.waitFor("the known device stored", func(s Stats) bool { return s.Stored == 60 })
	for d := range 30 {
		r.batch(fmt.Sprintf("new-%02d", d), 1, 10)
	}
	r.batch("old", 61, 120)
	// The known device's later batch is applied and its closed minutes
	// committed while the new devices wait.
	results := func() int {
		n := 0
		if err := r.st.Results(store.ResultQuery{Pipeline: "p1m", Device: "old"}, func(*store.WindowResult) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	s := r.waitFor("the known device's closed minutes stored", func(s Stats) bool { return s.Stored == 180 && results() >= 2 })
	if s.Held != 30 {
		t.Fatalf("%d records held, want the 30 new devices' batches", s.Held)
	}
	// Their statuses release them, each in its announced zone.
	for d := range 30 {
		r.status(fmt.Sprintf("new-%02d", d))
	}
	r.waitFor("the new devices stored", func(s Stats) bool { return s.Stored == 480 && s.Held == 0 })
}

// A device with millions of readings keeps one sequence range: the dedup
// state stored for it stays a few bytes.
func TestDedupStateStaysSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("a million readings")
	}
	r := newRig(t, 0)
	const batches, per = 1000, 1000
	for i := range batches {
		r.batch("big", uint64(i*per)+1, per)
	}
	r.batch("big", 1, per) // a resend
	r.waitFor("a million readings", func(s Stats) bool { return s.Stored == batches*per && s.Duplicates == per })
	var sizes []int
	_, err := r.st.LoadPartition(0, func(dev string, epoch uint64, set []byte) error {
		sizes = append(sizes, len(set))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 1 || sizes[0] > 16 {
		t.Fatalf("dedup state %v bytes, want one small range set", sizes)
	}
}

// A quiet device's window state leaves memory once stored, comes back from
// the store for its idle timeout and its next reading, and survives a
// restart while unloaded: its results are those of a device never
// unloaded.
func TestQuietDeviceUnloadedAndLoadedBack(t *testing.T) {
	r := newRig(t, 0, func(c *Config) { c.UnloadAfter = 5 * time.Second })
	r.status("q")
	r.batch("q", 1, 90) // 12:00:01..12:01:30: the first minute closes
	r.waitFor("stored", func(s Stats) bool { return s.Stored == 90 && s.Committed == 2 })
	// Quiet for 10 s of processing time (past UnloadAfter, before the 30 s
	// idle timeout): unloaded with its second minute open.
	r.now.Add(int64(10 * time.Second))
	r.waitFor("the quiet device unloaded", func(s Stats) bool { return s.Engine.Unloaded == 1 })
	// Past the idle timeout its open minute is emitted provisionally: the
	// state came back from the store, and leaves again.
	r.now.Add(int64(time.Minute))
	r.waitFor("provisional result, unloaded again", func(s Stats) bool { return s.Engine.Provisional == 1 && s.Engine.Unloaded == 1 })
	// A restart while unloaded, then the next batch loads it back.
	r.stop()
	r.run()
	r.batch("q", 91, 90) // to 12:03:00
	r.waitFor("stored", func(s Stats) bool { return s.Stored == 90 && s.Committed == 3 && s.Engine.Results >= 4 })
	got := map[string]string{}
	if err := r.st.Results(store.ResultQuery{Pipeline: "p1m", Device: "q"}, func(w *store.WindowResult) error {
		got[w.Start.Format("15:04")] = fmt.Sprintf("n=%d mean=%.4f prov=%v", w.Count, w.Values["mean"], w.Provisional)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Europe/Paris: 13:00 local is 12:00 UTC; windows are UTC minutes.
	want := map[string]string{
		"12:00": "n=59 mean=30.0000 prov=false", // seq 1..59
		"12:01": "n=60 mean=56.1667 prov=false", // seq 60..119 (values seq%100)
		"12:02": "n=60 mean=49.5000 prov=false", // seq 120..179
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("minute %s: %s, want %s (all: %v)", k, got[k], v, got)
		}
	}
}

// A device's series list has each series once, however many there are
// (short lists are scanned, long ones indexed).
func TestDeviceSeriesListedOnce(t *testing.T) {
	for _, n := range []int{1, seriesScanMax, seriesScanMax + 1, 100} {
		d := &devState{}
		for round := range 3 {
			for i := range n {
				id := store.SeriesID{Channel: fmt.Sprint("ch", i), Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER}
				if added := d.addSeries(id); added != (round == 0) {
					t.Fatalf("%d series, round %d, series %d: added %v", n, round, i, added)
				}
			}
		}
		if len(d.info.Series) != n {
			t.Fatalf("%d series listed %d times", n, len(d.info.Series))
		}
		// A list restored from the store is indexed as well.
		r := &devState{info: store.DeviceInfo{Series: d.info.Series}}
		if r.addSeries(d.info.Series[n-1]) || len(r.info.Series) != n {
			t.Fatalf("%d series restored: a known series added again", n)
		}
	}
}
