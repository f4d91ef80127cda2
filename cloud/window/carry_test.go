package window_test

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

// counterDay is a meter reading at hour h of local day d (Paris, from
// 2026-01-05) with value v.
type counterDay struct {
	d, h int
	v    float64
}

func counterReadings(days []counterDay) []window.Reading {
	base := time.Date(2026, 1, 5, 0, 0, 0, 0, paris())
	var rs []window.Reading
	for i, c := range days {
		at := base.AddDate(0, 0, c.d).Add(time.Duration(c.h) * time.Hour)
		rs = append(rs, window.Reading{Device: "meter", Channel: "mains", Quantity: wire.Quantity_QUANTITY_ENERGY,
			TimeNs: at.UnixNano(), Value: c.v, Quality: synced, SeqEpoch: 1, Seq: uint64(i + 1)})
	}
	return rs
}

// A counter read once a day at 06:00 into the shipped energy_daily: each
// day's energy is the difference from the previous reading, across
// midnight and across days without a reading, with a counter reset on day
// 3 and a reading of day 1 arriving after days 1 and 2 had fired (both
// re-fire: day 1 gains, day 2 loses the same amount).
var onceADay = []counterDay{
	{0, 6, 1000}, {1, 6, 1500}, {2, 6, 2300}, {3, 6, 150}, // reset: the meter restarted from 0
	{1, 20, 1900}, // late, within the 3-day lateness
	{4, 6, 700}, {8, 6, 2900}, {9, 6, 3300}, {10, 6, 3500},
}

type dayEnergy struct {
	wh       float64
	resets   int
	revision uint32
}

var onceADayWant = map[int]dayEnergy{
	0: {0, 0, 1},    // nothing before the first reading
	1: {900, 0, 2},  // 1000 → 1500 → 1900
	2: {400, 0, 2},  // 1900 → 2300, re-fired by the late reading
	3: {150, 1, 1},  // 2300 → 150: reset, the new value counts
	4: {550, 0, 1},  // 150 → 700
	8: {2200, 0, 1}, // 700 → 2900 over four days, all on the later reading's day; day 4 was purged before day 8 fired
	9: {400, 0, 1},  // 2900 → 3300
	// day 10 has not fired: no later reading moved the watermark past it.
}

func dailyCounterResults(t *testing.T, got map[winID]window.Result) map[int]dayEnergy {
	t.Helper()
	base := time.Date(2026, 1, 5, 0, 0, 0, 0, paris())
	out := map[int]dayEnergy{}
	for id, r := range got {
		if id.pipeline != "energy_daily" || r.Provisional {
			continue
		}
		d := int(time.Unix(0, r.Start).Sub(base).Hours() / 24)
		wh, _ := r.Value("energy")
		out[d] = dayEnergy{wh, r.CounterResets, r.Revision}
	}
	return out
}

func checkDaily(t *testing.T, what string, got map[int]dayEnergy) {
	t.Helper()
	if len(got) != len(onceADayWant) {
		t.Errorf("%s: %d days %v, want %d", what, len(got), got, len(onceADayWant))
	}
	for d, w := range onceADayWant {
		if got[d] != w {
			t.Errorf("%s: day %d: %+v, want %+v", what, d, got[d], w)
		}
	}
}

func TestOnceADayCounterGivesDailyEnergy(t *testing.T) {
	eng := mustEngine(t, window.DefaultPipelines()...)
	got := map[winID]window.Result{}
	for _, r := range counterReadings(onceADay) {
		eng.Apply(&r)
		for _, res := range eng.TakeOutput().Results {
			got[winID{res.Pipeline, res.Key, res.Start}] = res
		}
	}
	checkDaily(t, "one run", dailyCounterResults(t, got))
	// energy_15m takes the same rule: the quarter hour of each reading. Its
	// lateness is 1 day, so the late reading of day 1 is in the late stream
	// there, and the quarters sum to 500 + 800 + 150 + 550 + 2200 + 400 (day 10's quarter has not fired).
	var sum float64
	for id, r := range got {
		if id.pipeline == "energy_15m" && !r.Provisional {
			v, _ := r.Value("energy")
			sum += v
		}
	}
	if want := 500.0 + 800 + 150 + 550 + 2200 + 400; sum != want {
		t.Errorf("energy_15m sum %v, want %v (every increment once)", sum, want)
	}
}

// The counter bases survive the per-device checkpoint: a crash after any
// reading, restored from the stored deltas and replayed, gives the same
// results and revisions as the run without a crash (exactly once).
func TestCounterAcrossWindowsSurvivesDeltaRestoreAndReplay(t *testing.T) {
	pipes := window.DefaultPipelines()
	log := counterReadings(onceADay)
	for crashAt := range len(log) {
		got := map[winID]window.Result{}
		header, states := []byte(nil), map[string][]byte{}
		eng := mustEngine(t, pipes...)
		for i := range log {
			eng.Apply(&log[i])
			eng.MarkApplied(uint64(i + 1))
			for _, res := range eng.TakeOutput().Results {
				got[winID{res.Pipeline, res.Key, res.Start}] = res
			}
			d, err := eng.TakeDelta()
			if err != nil {
				t.Fatal(err)
			}
			if !d.Empty() {
				header = d.Header
				for _, ds := range d.Devices {
					states[ds.Device] = ds.State
				}
			}
			if i == crashAt {
				break
			}
		}
		// A result written but re-emitted after the restore is upserted
		// again: harmless, and the revision must match.
		var devs [][]byte
		for _, st := range states {
			devs = append(devs, st)
		}
		eng, err := window.RestoreDelta(pipes, header, devs)
		if err != nil {
			t.Fatal(err)
		}
		for i := int(eng.AppliedThrough()); i < len(log); i++ {
			eng.Apply(&log[i])
			eng.MarkApplied(uint64(i + 1))
		}
		for _, res := range eng.TakeOutput().Results {
			got[winID{res.Pipeline, res.Key, res.Start}] = res
		}
		checkDaily(t, "crash after reading "+string(rune('0'+crashAt)), dailyCounterResults(t, got))
	}
}

// counterCompatPipelines is the configuration testdata/compat/checkpoint-v3.bin
// was taken with, by the engine before counter bases existed:
// a counter and a power series, three daily readings at 06:00 UTC
// (1000, 1500, 2300 Wh; power 50 W), applied through offset 6.
func counterCompatPipelines() []window.Pipeline {
	return []window.Pipeline{{
		Name:            "daily",
		Inputs:          []window.Selector{{Quantity: "energy"}, {Quantity: "active_power"}},
		Window:          window.WindowSpec{Kind: window.Day},
		Aggregations:    []window.Aggregation{{Name: "energy", Func: window.Energy}, {Name: "count", Func: window.Count}},
		OutOfOrderness:  time.Minute,
		AllowedLateness: 3 * 24 * time.Hour,
		MaxGap:          5 * time.Minute,
		TimeZone:        "UTC",
	}}
}

// State written before counter bases existed still restores, and the
// restored engine carries counters across windows from there on.
func TestVersion3CheckpointStillRestores(t *testing.T) {
	old, err := os.ReadFile("testdata/compat/checkpoint-v3.bin")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := window.Restore(counterCompatPipelines(), old)
	if err != nil {
		t.Fatalf("checkpoint from before counter bases: %v", err)
	}
	if eng.AppliedThrough() != 6 {
		t.Fatalf("applied through %d, want 6", eng.AppliedThrough())
	}
	day := int64(24 * time.Hour)
	base := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC).UnixNano()
	apply := func(i int, v float64) []window.Result {
		eng.Apply(&window.Reading{Device: "meter", Channel: "mains", Quantity: wire.Quantity_QUANTITY_ENERGY, TimeNs: base + int64(i)*day, Value: v, Quality: synced, SeqEpoch: 1, Seq: uint64(i + 1)})
		return eng.TakeOutput().Results
	}
	energyOf := func(rs []window.Result) []float64 {
		var out []float64
		for _, r := range rs {
			if r.Key.Quantity == wire.Quantity_QUANTITY_ENERGY {
				v, _ := r.Value("energy")
				out = append(out, v)
			}
		}
		return out
	}
	// Day 2 (2300) fires with day 1's last reading (1500) still held.
	if got := energyOf(apply(3, 2600)); !slices.Equal(got, []float64{800}) {
		t.Fatalf("day 2 after restore: %v, want [800]", got)
	}
	// The state written now, with counter bases, restores too.
	cp, err := eng.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if eng, err = window.Restore(counterCompatPipelines(), cp); err != nil {
		t.Fatal(err)
	}
	if got := energyOf(apply(4, 2650)); !slices.Equal(got, []float64{300}) {
		t.Fatalf("day 3: %v, want [300]", got)
	}
}

// State of version 3 written by the release that carries counters across
// windows ends with the counter bases, and restores with them: the fixture
// testdata/compat/checkpoint-v3-bases.bin was taken with
// counterCompatPipelines after daily readings 1000, 1500, 2300 (days 1 to
// 3, purged since, the last one the counter's base) and 3000 on day 7.
// Day 7 fires with its increment from that base.
func TestVersion3CheckpointWithCounterBasesRestores(t *testing.T) {
	old, err := os.ReadFile("testdata/compat/checkpoint-v3-bases.bin")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := window.Restore(counterCompatPipelines(), old)
	if err != nil {
		t.Fatalf("version 3 checkpoint with counter bases: %v", err)
	}
	if eng.AppliedThrough() != 4 {
		t.Fatalf("applied through %d, want 4", eng.AppliedThrough())
	}
	at := time.Date(2026, 3, 8, 6, 0, 0, 0, time.UTC).UnixNano()
	eng.Apply(&window.Reading{Device: "meter", Channel: "mains", Quantity: wire.Quantity_QUANTITY_ENERGY, TimeNs: at, Value: 3400, Quality: synced, SeqEpoch: 1, Seq: 5})
	var got []float64
	for _, r := range eng.TakeOutput().Results {
		if r.Key.Quantity == wire.Quantity_QUANTITY_ENERGY && !r.Provisional {
			v, _ := r.Value("energy")
			got = append(got, v)
		}
	}
	if !slices.Equal(got, []float64{700}) {
		t.Fatalf("day 7 after restore: %v, want [700] (3000 - 2300, the restored base)", got)
	}
}
