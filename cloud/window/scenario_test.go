package window_test

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC).UnixNano()

func sec(n float64) int64 { return t0 + int64(n*float64(time.Second)) }

func mustEngine(t *testing.T, ps ...window.Pipeline) *window.Engine {
	t.Helper()
	eng, err := window.New(ps)
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

func reading(dev, ch string, at int64, v float64, seq uint64) *window.Reading {
	return &window.Reading{Device: dev, Channel: ch, Quantity: power, TimeNs: at, Value: v, Quality: synced, SeqEpoch: 1, Seq: seq}
}

func minuteStats() window.Pipeline {
	return window.Pipeline{
		Name: "m", Inputs: []window.Selector{{}},
		Window:         window.WindowSpec{Kind: window.Tumbling, Size: time.Minute},
		Aggregations:   []window.Aggregation{{Name: "count", Func: window.Count}, {Name: "sum", Func: window.Sum}},
		OutOfOrderness: 5 * time.Second, AllowedLateness: 2 * time.Minute, IdleTimeout: 30 * time.Second,
	}
}

// An offline device holds only its own windows; after the idle timeout they
// are emitted provisionally, and the backlog makes them final.
func TestIdleDeviceProvisionalThenFinal(t *testing.T) {
	eng := mustEngine(t, minuteStats())
	proc := sec(0)
	eng.Advance(proc)
	eng.Apply(reading("online", "p", sec(0), 1, 1))
	eng.Apply(reading("offline", "p", sec(0), 10, 1))
	eng.Apply(reading("offline", "p", sec(20), 10, 2))
	// "online" keeps reporting and its minute fires; "offline" is silent.
	for i := 1; i <= 70; i++ {
		proc = sec(float64(i))
		eng.Advance(proc)
		eng.Apply(reading("online", "p", sec(float64(i)), 1, uint64(i+1)))
	}
	out := eng.TakeOutput()
	var online, offline []window.Result
	for _, r := range out.Results {
		if r.Key.Device == "online" {
			online = append(online, r)
		} else {
			offline = append(offline, r)
		}
	}
	if len(online) != 1 || online[0].Provisional || online[0].Values[0] != 60 {
		t.Fatalf("online device: %+v", online)
	}
	if len(offline) != 1 || !offline[0].Provisional || offline[0].Revision != 1 || offline[0].Values[0] != 2 {
		t.Fatalf("offline device after idle timeout: %+v", offline)
	}
	if wm, _ := eng.Watermark("m", "offline"); wm != sec(15) {
		t.Fatalf("offline watermark moved with another device: %v", wm)
	}
	// The backlog arrives: the window becomes final with everything in it.
	eng.Apply(reading("offline", "p", sec(40), 10, 3))
	eng.Apply(reading("offline", "p", sec(66), 10, 4))
	out = eng.TakeOutput()
	if len(out.Results) != 1 {
		t.Fatalf("backlog results: %+v", out.Results)
	}
	r := out.Results[0]
	if r.Provisional || r.Revision != 2 || r.Values[0] != 3 || r.Values[1] != 30 {
		t.Fatalf("final after backlog: %+v", r)
	}
}

// A reading within the allowed lateness re-fires its window; a later one
// goes to the late stream with its window, counted.
func TestLatenessRefireAndLateStream(t *testing.T) {
	eng := mustEngine(t, minuteStats())
	eng.Apply(reading("d", "p", sec(10), 1, 1))
	eng.Apply(reading("d", "p", sec(70), 1, 2)) // watermark 65 s: [0, 60) fires
	eng.Apply(reading("d", "p", sec(30), 5, 3)) // late, within 2 min: re-fire
	out := eng.TakeOutput()
	if len(out.Results) != 2 || out.Results[1].Revision != 2 || out.Results[1].Values[1] != 6 {
		t.Fatalf("re-fire: %+v", out.Results)
	}
	eng.Apply(reading("d", "p", sec(200), 1, 4)) // watermark 195 s ≥ 60 + 120
	eng.Apply(reading("d", "p", sec(59), 7, 5))
	out = eng.TakeOutput()
	if len(out.Late) != 1 || out.Late[0].Windows[0] != (window.Span{Start: sec(0), End: sec(60)}) || eng.Stats().Late != 1 {
		t.Fatalf("late stream: %+v (stats %+v)", out.Late, eng.Stats())
	}
	for _, r := range out.Results {
		if r.Start == sec(0) {
			t.Fatalf("window re-fired after its lateness: %+v", r)
		}
	}
}

func TestNonFiniteValuesAndAbsurdTimesAreRejectedAndCounted(t *testing.T) {
	eng := mustEngine(t, minuteStats())
	eng.Apply(reading("d", "p", sec(1), math.NaN(), 1))
	eng.Apply(reading("d", "p", sec(2), math.Inf(1), 2))
	eng.Apply(reading("d", "p", sec(3), 4, 3))
	eng.Apply(reading("d", "p", math.MaxInt64-5, 1, 5))
	eng.Apply(reading("d", "p", -1, 1, 6))
	eng.Apply(reading("d", "p", sec(100), 0, 4))
	out := eng.TakeOutput()
	if st := eng.Stats(); st.Rejected != 4 || st.Readings != 2 {
		t.Fatalf("stats %+v", st)
	}
	if out.Results[0].Values[1] != 4 {
		t.Fatalf("sum %v", out.Results[0].Values[1])
	}
}

// Feature snapshots: sliding 15 s windows every second, each emitting the
// readings it holds as rows. A reading too late for the oldest windows
// still updates the ones open.
func TestSlidingSnapshotRows(t *testing.T) {
	eng := mustEngine(t, window.Pipeline{
		Name: "snap", Inputs: []window.Selector{{}},
		Window:          window.WindowSpec{Kind: window.Sliding, Size: 15 * time.Second, Slide: time.Second},
		Aggregations:    []window.Aggregation{{Name: "rows", Func: window.Readings}},
		AllowedLateness: 2 * time.Second,
	})
	for i := range 40 {
		eng.Apply(reading("h", "p", sec(float64(i)), float64(i), uint64(i+1)))
	}
	out := eng.TakeOutput()
	var w20 *window.Result
	for i := range out.Results {
		if out.Results[i].Start == sec(20) {
			w20 = &out.Results[i]
		}
	}
	if w20 == nil || len(w20.Rows) != 15 || w20.Rows[0].TimeNs != sec(20) || w20.Rows[14].Values[0] != 34 {
		t.Fatalf("window [20 s, 35 s): %+v", w20)
	}
	// Watermark 39 s, lateness 2 s: windows ending at or before 37 s are
	// closed. A reading at 22.5 s belongs to the windows starting 8..22 s,
	// which end 23..37 s: late for all 15.
	eng.Apply(reading("h", "p", sec(22.5), -1, 100))
	out = eng.TakeOutput()
	if len(out.Late) != 1 || len(out.Late[0].Windows) != 15 {
		t.Fatalf("late for all windows: %+v", out.Late)
	}
	// A reading at 36.5 s belongs to the windows starting 22..36 s, ending
	// 37..51 s: late only for the one ending at 37 s; it updates the other
	// 14, of which the two already fired (ending 38 and 39 s) re-fire.
	eng.Apply(reading("h", "p", sec(36.5), -2, 101))
	out = eng.TakeOutput()
	if len(out.Late) != 1 || !slices.Equal(out.Late[0].Windows, []window.Span{{Start: sec(22), End: sec(37)}}) {
		t.Fatalf("partially late: %+v", out.Late)
	}
	refired := 0
	for _, r := range out.Results {
		if r.Revision == 2 {
			refired++
		}
	}
	if refired != 2 {
		t.Fatalf("%d windows re-fired: %+v", refired, out.Results)
	}
}

// The training-set case: total power joined per second with an appliance's
// on/off state, cut into sessions (gap 5 s) kept when at least 30 s long,
// each emitted as one record of joined rows.
func TestJoinedSessions(t *testing.T) {
	eng := mustEngine(t, window.Pipeline{
		Name: "train", Inputs: []window.Selector{{}}, Join: []string{"mains", "kettle"}, Active: "kettle",
		Window:          window.WindowSpec{Kind: window.Session, Gap: 5 * time.Second, MinDuration: 30 * time.Second},
		Aggregations:    []window.Aggregation{{Name: "rows", Func: window.Readings}, {Name: "mean_mains", Func: window.Mean}},
		AllowedLateness: 10 * time.Second,
	})
	var seq uint64
	emit := func(ch string, at float64, v float64) {
		seq++
		eng.Apply(reading("home", ch, sec(at), v, seq))
	}
	// Both streams report every second; the kettle is on 0..40 s (41 rows),
	// 50..60 s (too short) and 70..105 s; a second with a missing state
	// reading (88 s) makes no row but does not split the session.
	on := func(s int) bool { return s <= 40 || s >= 50 && s <= 60 || s >= 70 && s <= 105 }
	for s := 0; s <= 200; s++ {
		state := 0.0
		if on(s) {
			state = 1
		}
		emit("mains", float64(s)+0.2, 100+1900*state)
		if s != 88 {
			emit("kettle", float64(s)+0.7, state)
		}
	}
	out := eng.TakeOutput()
	if len(out.Results) != 2 {
		t.Fatalf("want 2 sessions, got %+v", out.Results)
	}
	a, c := out.Results[0], out.Results[1]
	if a.Start != sec(0) || a.End != sec(45) || len(a.Rows) != 41 || !slices.Equal(a.Rows[3].Values, []float64{2000, 1}) {
		t.Fatalf("session A: start %d end %d rows %d", a.Start-t0, a.End-t0, len(a.Rows))
	}
	if c.Start != sec(70) || len(c.Rows) != 35 || c.Key.Channel != "mains+kettle" {
		t.Fatalf("session C: %+v", c)
	}
}

// The checkpoint protocol: the collector logs every deduplicated reading
// with an offset, applies it, and stores (output, checkpoint with
// AppliedThrough) atomically. After a crash anywhere, Restore and replay
// from AppliedThrough+1 give the same results as a run without a crash.
func TestCheckpointCrashAndReplay(t *testing.T) {
	pipes := window.DefaultPipelines()
	var log []window.Reading
	var seq uint64
	for m := range 240 {
		for _, ch := range []string{"mains", "sub1", "sub2", "sub3"} {
			seq++
			log = append(log, *reading("home", ch, sec(float64(m*15)), float64(100+m%7*10), seq))
		}
	}
	upsert := func(store map[winID]window.Result, out window.Output) {
		for _, r := range out.Results {
			store[winID{r.Pipeline, r.Key, r.Start}] = r
		}
	}
	// Reference run without a crash.
	want := map[winID]window.Result{}
	eng := mustEngine(t, pipes...)
	for i := range log {
		eng.Apply(&log[i])
	}
	upsert(want, eng.TakeOutput())

	for _, crashAt := range []int{1, 97, 480, 959} {
		got := map[winID]window.Result{}
		eng := mustEngine(t, pipes...)
		var durable []byte
		for i := range log {
			eng.Apply(&log[i])
			eng.MarkApplied(uint64(i + 1))
			if i%50 == 49 { // commit point: results + checkpoint, atomically
				upsert(got, eng.TakeOutput())
				var err error
				if durable, err = eng.Checkpoint(); err != nil {
					t.Fatal(err)
				}
			}
			if i == crashAt {
				break // kill -9: everything since the last commit is lost
			}
		}
		if durable == nil {
			eng = mustEngine(t, pipes...)
		} else {
			var err error
			if eng, err = window.Restore(pipes, durable); err != nil {
				t.Fatal(err)
			}
		}
		for i := int(eng.AppliedThrough()); i < len(log); i++ {
			eng.Apply(&log[i])
			eng.MarkApplied(uint64(i + 1))
		}
		upsert(got, eng.TakeOutput())
		if len(got) != len(want) {
			t.Fatalf("crash at %d: %d windows, want %d", crashAt, len(got), len(want))
		}
		for id, w := range want {
			if g := got[id]; diffResult(g, w) != "" || g.Revision != w.Revision {
				t.Fatalf("crash at %d: %v: got %+v want %+v", crashAt, id, g, w)
			}
		}
	}
}

func TestRestoreRejectsForeignCheckpoints(t *testing.T) {
	eng := mustEngine(t, minuteStats())
	eng.Apply(reading("d", "p", sec(1), 1, 1))
	eng.Apply(reading("d", "p", sec(100), 1, 2))
	if _, err := eng.Checkpoint(); err == nil {
		t.Fatal("checkpoint with output pending must fail")
	}
	eng.TakeOutput()
	data, err := eng.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	other := minuteStats()
	other.AllowedLateness = time.Hour
	if _, err := window.Restore([]window.Pipeline{other}, data); !errors.Is(err, window.ErrCheckpoint) {
		t.Fatalf("restore with other pipelines: %v", err)
	}
	if _, err := window.Restore([]window.Pipeline{minuteStats()}, []byte("garbage")); !errors.Is(err, window.ErrCheckpoint) {
		t.Fatalf("restore garbage: %v", err)
	}
	if _, err := window.Restore([]window.Pipeline{minuteStats()}, data); err != nil {
		t.Fatal(err)
	}
}

// For regular sampling, the bounded-memory binned integration equals the
// step integral, gaps included.
func TestBinnedEnergyEqualsStepForRegularSampling(t *testing.T) {
	eng := mustEngine(t, window.Pipeline{
		Name: "e", Inputs: []window.Selector{{}},
		Window:       window.WindowSpec{Kind: window.Tumbling, Size: time.Hour},
		Aggregations: []window.Aggregation{{Name: "step", Func: window.EnergyIntegral}, {Name: "binned", Func: window.EnergyBinned}},
		MaxGap:       10 * time.Second,
	})
	var seq uint64
	for i := range 3600 {
		if i >= 1000 && i < 1300 { // a 5-minute outage: not bridged
			continue
		}
		seq++
		eng.Apply(reading("m", "p", sec(float64(i)*1+0.25), float64(1000+i%17), seq))
	}
	eng.Apply(reading("m", "p", sec(7300), 0, seq+1))
	out := eng.TakeOutput()
	r := out.Results[0]
	step, binned := r.Values[0], r.Values[1]
	if math.Abs(step-binned) > 1e-9*step || step == 0 {
		t.Fatalf("step %v Wh, binned %v Wh", step, binned)
	}
	if r.Coverage >= 1 || r.Coverage < 0.9 {
		t.Fatalf("coverage %v with a 5-minute outage", r.Coverage)
	}
}

func TestAppendBatchFromWire(t *testing.T) {
	data, err := wire.EncodeBatch(&wire.Batch{DeviceId: "gw-1", SeqEpoch: 9, BootId: "b", Readings: []*wire.Reading{
		{Seq: 4, Channel: "mains", Quantity: power, Value: 230.5, WallNs: sec(1), TimeQuality: synced},
		{Seq: 5, Channel: "meter", Quantity: energy, Value: 1e6, WallNs: sec(2), TimeQuality: wire.TimeQuality_TIME_QUALITY_ESTIMATED, TimeErrorNs: 5},
	}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := wire.DecodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	got := window.AppendBatch(nil, b)
	want := []window.Reading{
		{Device: "gw-1", Channel: "mains", Quantity: power, TimeNs: sec(1), Value: 230.5, Quality: synced, SeqEpoch: 9, Seq: 4},
		{Device: "gw-1", Channel: "meter", Quantity: energy, TimeNs: sec(2), Value: 1e6, Quality: wire.TimeQuality_TIME_QUALITY_ESTIMATED, SeqEpoch: 9, Seq: 5},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v", got)
	}
}
