package window_test

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/cloud/window/reference"
	"github.com/gridedge/gridedge/shared/wire"
)

const (
	power  = wire.Quantity_QUANTITY_ACTIVE_POWER
	energy = wire.Quantity_QUANTITY_ENERGY
	synced = wire.TimeQuality_TIME_QUALITY_SYNCED
)

// propertyPipelines exercises every window kind and aggregation.
func propertyPipelines() []window.Pipeline {
	all := []window.Aggregation{
		{Name: "count", Func: window.Count}, {Name: "sum", Func: window.Sum}, {Name: "mean", Func: window.Mean},
		{Name: "min", Func: window.Min}, {Name: "max", Func: window.Max}, {Name: "first", Func: window.First},
		{Name: "last", Func: window.Last}, {Name: "stddev", Func: window.Stddev},
		{Name: "ei", Func: window.EnergyIntegral}, {Name: "ec", Func: window.EnergyCounter},
		{Name: "eb", Func: window.EnergyBinned}, {Name: "energy", Func: window.Energy},
	}
	return []window.Pipeline{
		{
			Name: "tum", Inputs: []window.Selector{{Channel: "[abcm]"}},
			Window:       window.WindowSpec{Kind: window.Tumbling, Size: 10 * time.Second},
			Aggregations: all, OutOfOrderness: 2 * time.Second, AllowedLateness: 15 * time.Second,
			IdleTimeout: 30 * time.Second, MaxGap: 2 * time.Second,
			Derived: []window.Derived{{Name: "rest", Expr: "a.sum - b.sum - 0.5"}, {Name: "restE", Expr: "a.ei-b.ei"}, {Name: "restB", Expr: "a.energy - b.energy - c.energy"}, {Name: "restM", Expr: "m.energy - m.count"}},
		},
		{
			Name: "slide", Inputs: []window.Selector{{Channel: "a"}},
			Window: window.WindowSpec{Kind: window.Sliding, Size: 20 * time.Second, Slide: 5 * time.Second},
			Aggregations: []window.Aggregation{
				{Name: "count", Func: window.Count}, {Name: "sum", Func: window.Sum},
				{Name: "max", Func: window.Max}, {Name: "rows", Func: window.Readings},
			},
			OutOfOrderness: time.Second, AllowedLateness: 10 * time.Second, IdleTimeout: 30 * time.Second,
		},
		{
			Name: "day", Inputs: []window.Selector{{Quantity: "energy"}, {Channel: "a"}},
			Window:          window.WindowSpec{Kind: window.Day},
			Aggregations:    []window.Aggregation{{Name: "count", Func: window.Count}, {Name: "sum", Func: window.Sum}, {Name: "ec", Func: window.EnergyCounter}},
			AllowedLateness: time.Minute, TimeZone: "Europe/Paris", MaxGap: time.Minute,
		},
		{
			Name: "sess", Inputs: []window.Selector{{Channel: "a"}},
			Window:         window.WindowSpec{Kind: window.Session, Gap: 3 * time.Second, MinDuration: 4 * time.Second},
			Aggregations:   []window.Aggregation{{Name: "count", Func: window.Count}, {Name: "sum", Func: window.Sum}, {Name: "max", Func: window.Max}},
			OutOfOrderness: time.Second, AllowedLateness: 8 * time.Second, IdleTimeout: 20 * time.Second,
		},
		{
			Name: "sesscut", Inputs: []window.Selector{{Channel: "a"}},
			Window:         window.WindowSpec{Kind: window.Session, Gap: 3 * time.Second, MinDuration: 4 * time.Second, MaxDuration: 12 * time.Second},
			Aggregations:   []window.Aggregation{{Name: "count", Func: window.Count}, {Name: "sum", Func: window.Sum}},
			OutOfOrderness: time.Second, AllowedLateness: 8 * time.Second, IdleTimeout: 20 * time.Second,
		},
		{
			Name: "join", Inputs: []window.Selector{{Quantity: "active_power"}}, Join: []string{"a", "b"}, Active: "b",
			Window:         window.WindowSpec{Kind: window.Session, Gap: 5 * time.Second, MinDuration: 6 * time.Second},
			Aggregations:   []window.Aggregation{{Name: "count", Func: window.Count}, {Name: "rows", Func: window.Readings}, {Name: "mean", Func: window.Mean}},
			OutOfOrderness: 2 * time.Second, AllowedLateness: 10 * time.Second, IdleTimeout: 20 * time.Second,
		},
	}
}

type arrival struct {
	r  window.Reading
	at int64 // processing time of arrival
}

// generate returns arrivals (before duplication) for one seed: three
// devices, power channels a and b, an energy counter c with resets, random
// steps and gaps, small out-of-order delays, late and very late readings,
// and offline episodes whose backlog arrives after the device is idle.
func generate(rng *rand.Rand) []arrival {
	bases := []int64{
		time.Date(2026, 3, 30, 0, 0, 0, 0, paris()).UnixNano() - int64(time.Minute),  // after a 23 h day
		time.Date(2026, 10, 26, 0, 0, 0, 0, paris()).UnixNano() - int64(time.Minute), // after a 25 h day
		time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC).UnixNano(),
	}
	base := bases[rng.IntN(len(bases))]
	qualities := []wire.TimeQuality{synced, synced, synced, wire.TimeQuality_TIME_QUALITY_RTC, wire.TimeQuality_TIME_QUALITY_CORRECTED, wire.TimeQuality_TIME_QUALITY_ESTIMATED}
	sec := int64(time.Second)
	var out []arrival
	for d := range 3 {
		dev := fmt.Sprintf("dev%d", d)
		epoch := rng.Uint64()
		var seq uint64
		t := base + rng.Int64N(3*sec)
		counter := float64(rng.IntN(1000))
		n := 80 + rng.IntN(200)
		offFrom, comeback := int64(math.MaxInt64), int64(math.MaxInt64)
		if rng.IntN(2) == 0 {
			offFrom = t + rng.Int64N(int64(n)*sec)
			comeback = offFrom + 40*sec + rng.Int64N(80*sec)
		}
		delay := func() int64 {
			switch x := rng.IntN(100); {
			case x < 80:
				return rng.Int64N(sec)
			case x < 95:
				return rng.Int64N(20 * sec)
			default:
				return 30*sec + rng.Int64N(90*sec)
			}
		}
		emit := func(ch string, q wire.Quantity, v float64) {
			seq++
			at := t + delay()
			if t >= offFrom {
				// Buffered at the edge while offline, sent in order on return.
				at = max(at, comeback+(t-offFrom)/100)
			}
			out = append(out, arrival{r: window.Reading{
				Device: dev, Channel: ch, Quantity: q, TimeNs: t, Value: v,
				Quality: qualities[rng.IntN(len(qualities))], SeqEpoch: epoch, Seq: seq,
			}, at: at})
		}
		for range n {
			switch x := rng.IntN(20); {
			case x == 0:
				t += int64(4+rng.IntN(10)) * sec
			case x < 4:
				t += int64(rng.IntN(4)) * sec / 4
			default:
				t += sec + int64(rng.IntN(3))*int64(time.Millisecond)
			}
			emit("a", power, float64(rng.IntN(4000))/4)
			if rng.IntN(5) != 0 {
				emit("b", power, float64(rng.IntN(8)/4)) // an on/off-like state, often 0
			}
			if rng.IntN(4) == 0 {
				// Channel m carries power and an energy counter: derived
				// terms must pick the same series on every run.
				if rng.IntN(2) == 0 {
					emit("m", power, float64(rng.IntN(400)))
				} else {
					emit("m", energy, float64(rng.IntN(400)))
				}
			}
			if rng.IntN(3) == 0 {
				if rng.IntN(25) == 0 {
					counter = float64(rng.IntN(10))
				} else {
					counter += float64(rng.IntN(50))
				}
				emit("c", energy, counter)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b arrival) int { return cmp.Compare(a.at, b.at) })
	// Redeliveries: copies of some readings arrive again later.
	for i := range len(out) / 20 {
		_ = i
		a := out[rng.IntN(len(out))]
		a.at += rng.Int64N(60 * sec)
		out = append(out, a)
	}
	slices.SortStableFunc(out, func(a, b arrival) int { return cmp.Compare(a.at, b.at) })
	return out
}

type identity struct {
	device     string
	epoch, seq uint64
}

// dedup is the collector's step before the engine: first copy wins.
func dedup(in []arrival) []arrival {
	seen := map[identity]bool{}
	var out []arrival
	for _, a := range in {
		id := identity{a.r.Device, a.r.SeqEpoch, a.r.Seq}
		if seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, a)
	}
	return out
}

type winID struct {
	pipeline string
	key      window.Key
	start    int64
}

// latest keeps the highest revision per window and checks revisions only
// grow by one per emission.
func latest(t *testing.T, results []window.Result) map[winID]window.Result {
	t.Helper()
	m := map[winID]window.Result{}
	for _, r := range results {
		id := winID{r.Pipeline, r.Key, r.Start}
		prev, ok := m[id]
		want := uint32(1)
		if ok {
			want = prev.Revision + 1
		}
		if r.Revision != want {
			t.Fatalf("%v: revision %d after %d", id, r.Revision, prev.Revision)
		}
		m[id] = r
	}
	return m
}

func TestPropertyEngineEqualsReference(t *testing.T) {
	seeds := 150
	if testing.Short() {
		seeds = 30
	}
	pipes := propertyPipelines()
	zones := map[string]string{"dev0": "Europe/Paris", "dev1": "America/New_York"}
	var provisional, provThenFinal, refires, late, retracted int
	perPipeline := map[string]int{}
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		arrivals := dedup(generate(rng))
		eng, err := window.New(pipes)
		if err != nil {
			t.Fatal(err)
		}
		for d, z := range zones {
			if err := eng.SetTimeZone(d, z); err != nil {
				t.Fatal(err)
			}
		}
		var results []window.Result
		var lateOut []window.LateReading
		// Odd seeds restore from the incremental deltas taken after every
		// output, the way a worker stores them: the latest header and the
		// latest state of each device.
		useDelta := seed%2 == 1
		var header []byte
		devState := map[string][]byte{}
		take := func() {
			out := eng.TakeOutput()
			results = append(results, out.Results...)
			lateOut = append(lateOut, out.Late...)
			if !useDelta {
				return
			}
			d, err := eng.TakeDelta()
			if err != nil {
				t.Fatal(err)
			}
			if d.Header != nil {
				header = d.Header
			}
			for _, ds := range d.Devices {
				devState[ds.Device] = ds.State
			}
		}
		restoreAt := rng.IntN(len(arrivals))
		takeEvery := 1 + rng.IntN(50)
		var inputs []window.Reading
		for i, a := range arrivals {
			if i == restoreAt {
				take()
				if useDelta && header != nil {
					var states [][]byte
					for _, st := range devState {
						states = append(states, st)
					}
					if eng, err = window.RestoreDelta(pipes, header, states); err != nil {
						t.Fatalf("seed %d: restore from deltas: %v", seed, err)
					}
				} else {
					data, err := eng.Checkpoint()
					if err != nil {
						t.Fatal(err)
					}
					if eng, err = window.Restore(pipes, data); err != nil {
						t.Fatalf("seed %d: restore: %v", seed, err)
					}
				}
			}
			eng.Advance(a.at)
			r := a.r
			eng.Apply(&r)
			if rng.IntN(takeEvery) == 0 {
				take() // coalescing of re-fires varies with how often output is taken
			}
			inputs = append(inputs, a.r)
		}
		take()
		want, err := reference.Compute(pipes, zones, inputs)
		if err != nil {
			t.Fatal(err)
		}
		got := latest(t, results)
		var finals []window.Result
		for id, r := range got {
			switch {
			case r.Retracted:
				retracted++
			case r.Provisional:
				provisional++
			default:
				finals = append(finals, r)
			}
			_ = id
		}
		wasProvisional := map[winID]bool{}
		for _, r := range results {
			id := winID{r.Pipeline, r.Key, r.Start}
			if r.Provisional {
				wasProvisional[id] = true
			} else if wasProvisional[id] {
				provThenFinal++
			}
			if r.Revision > 1 && !r.Provisional {
				refires++
			}
		}
		late += len(lateOut)
		reference.SortResults(finals)
		compareResults(t, seed, finals, want.Final)
		for _, r := range finals {
			perPipeline[r.Pipeline]++
		}
		if len(lateOut) != len(want.Late) {
			t.Fatalf("seed %d: %d late readings, reference %d", seed, len(lateOut), len(want.Late))
		}
		for i := range lateOut {
			if !lateEqual(lateOut[i], want.Late[i]) {
				t.Fatalf("seed %d: late %d: got %+v, want %+v", seed, i, lateOut[i], want.Late[i])
			}
		}
	}
	// The generator must reach every case the property is about.
	if provisional == 0 || provThenFinal == 0 || refires == 0 || late == 0 || retracted == 0 {
		t.Fatalf("generator too tame: provisional %d, provisional then final %d, refires %d, late %d, retracted %d",
			provisional, provThenFinal, refires, late, retracted)
	}
	for _, p := range pipes {
		if perPipeline[p.Name] == 0 {
			t.Fatalf("pipeline %s produced no final result in any seed", p.Name)
		}
	}
	t.Logf("final results per pipeline: %v", perPipeline)
	t.Logf("%d seeds: %d windows still provisional, %d finalised after provisional, %d re-fires, %d late, %d retracted",
		seeds, provisional, provThenFinal, refires, late, retracted)
}

func lateEqual(a, b window.LateReading) bool {
	return a.Pipeline == b.Pipeline && a.Reading == b.Reading && slices.Equal(a.Windows, b.Windows)
}

func compareResults(t *testing.T, seed uint64, got, want []window.Result) {
	t.Helper()
	gm := map[winID]window.Result{}
	for _, r := range got {
		gm[winID{r.Pipeline, r.Key, r.Start}] = r
	}
	for _, w := range want {
		id := winID{w.Pipeline, w.Key, w.Start}
		g, ok := gm[id]
		if !ok {
			t.Fatalf("seed %d: missing final %v (%s)", seed, id, time.Unix(0, w.Start).UTC())
		}
		delete(gm, id)
		if msg := diffResult(g, w); msg != "" {
			t.Fatalf("seed %d: %v: %s\n got %+v\nwant %+v", seed, id, msg, g, w)
		}
	}
	for id, g := range gm {
		t.Fatalf("seed %d: unexpected final %v: %+v", seed, id, g)
	}
}

func diffResult(g, w window.Result) string {
	if g.End != w.End || g.Count != w.Count || g.WorstQuality != w.WorstQuality || g.CounterResets != w.CounterResets {
		return fmt.Sprintf("end/count/quality/resets differ")
	}
	if g.Coverage != w.Coverage {
		return fmt.Sprintf("coverage %v, want %v", g.Coverage, w.Coverage)
	}
	if !slices.Equal(g.Names, w.Names) {
		return fmt.Sprintf("names %v, want %v", g.Names, w.Names)
	}
	for i := range g.Values {
		gv, wv := g.Values[i], w.Values[i]
		if g.Names[i] == "stddev" {
			if math.Abs(gv-wv) > 1e-9*max(1, math.Abs(wv)) {
				return fmt.Sprintf("stddev %v, want %v", gv, wv)
			}
			continue
		}
		if gv != wv {
			return fmt.Sprintf("%s = %v, want %v", g.Names[i], gv, wv)
		}
	}
	if len(g.Rows) != len(w.Rows) {
		return fmt.Sprintf("%d rows, want %d", len(g.Rows), len(w.Rows))
	}
	for i := range g.Rows {
		if g.Rows[i].TimeNs != w.Rows[i].TimeNs || !slices.Equal(g.Rows[i].Values, w.Rows[i].Values) {
			return fmt.Sprintf("row %d: %+v, want %+v", i, g.Rows[i], w.Rows[i])
		}
	}
	return ""
}

func paris() *time.Location {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic(err)
	}
	return loc
}
