package reference

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

// Output is what a finished run of the engine must have produced: the final
// (non-provisional, non-retracted) latest revision of every window whose
// device watermark passed its end, and the late stream in arrival order.
type Output struct {
	Final []window.Result
	Late  []window.LateReading
}

type groupKey struct {
	pipe  int
	key   window.Key
	start int64
}

type group struct {
	end      int64
	readings []window.Reading
}

// Compute returns the expected output for arrivals (already deduplicated)
// applied in order to an engine built from pipes, with zones[device] set
// before the first reading.
func Compute(pipes []window.Pipeline, zones map[string]string, arrivals []window.Reading) (*Output, error) {
	locs := map[string]*time.Location{}
	for d, z := range zones {
		loc, err := time.LoadLocation(z)
		if err != nil {
			return nil, fmt.Errorf("zone of %s: %w", d, err)
		}
		locs[d] = loc
	}
	maxT := map[string]int64{}
	groups := map[groupKey]*group{}
	// Series per (pipeline, device), to resolve a derived term's channel.
	seriesOrder := map[groupKey][]window.Key{}
	out := &Output{}
	for _, r := range arrivals {
		prev, had := maxT[r.Device]
		for pi := range pipes {
			p := &pipes[pi]
			if !selects(p, r) {
				continue
			}
			key := window.Key{Device: r.Device, Channel: r.Channel, Quantity: r.Quantity}
			if len(p.Join) > 0 {
				key = window.Key{Device: r.Device, Channel: strings.Join(p.Join, "+")}
			}
			dk := groupKey{pipe: pi, key: window.Key{Device: r.Device}}
			if !slices.Contains(seriesOrder[dk], key) {
				seriesOrder[dk] = append(seriesOrder[dk], key)
			}
			wm := int64(math.MinInt64)
			if had {
				wm = prev - int64(p.OutOfOrderness)
			}
			var late []window.Span
			for _, sp := range windowsOf(p, locs[r.Device], r.TimeNs) {
				if had && sp.End+int64(p.AllowedLateness) <= wm {
					late = append(late, sp)
					continue
				}
				start := sp.Start
				if p.Window.Kind == window.Session {
					start = 0 // sessions are cut after all readings are in
				}
				gk := groupKey{pipe: pi, key: key, start: start}
				g := groups[gk]
				if g == nil {
					g = &group{end: sp.End}
					groups[gk] = g
				}
				g.readings = append(g.readings, r)
			}
			if late != nil {
				out.Late = append(out.Late, window.LateReading{Pipeline: p.Name, Reading: r, Windows: late})
			}
		}
		if !had || r.TimeNs > prev {
			maxT[r.Device] = r.TimeNs
		}
	}
	// A counter's increment from the last reading of the previous window
	// (tumbling and calendar windows) belongs to the next window.
	prevLast := map[groupKey]*window.Reading{}
	byStart := map[groupKey][]int64{}
	for gk := range groups {
		sk := groupKey{pipe: gk.pipe, key: gk.key}
		byStart[sk] = append(byStart[sk], gk.start)
	}
	for sk, starts := range byStart {
		slices.Sort(starts)
		for i := 1; i < len(starts); i++ {
			prev := groups[groupKey{pipe: sk.pipe, key: sk.key, start: starts[i-1]}].readings
			last := slices.MaxFunc(prev, byTime)
			prevLast[groupKey{pipe: sk.pipe, key: sk.key, start: starts[i]}] = &last
		}
	}
	finals := map[groupKey]window.Result{}
	for gk, g := range groups {
		p := &pipes[gk.pipe]
		wm := maxT[gk.key.Device] - int64(p.OutOfOrderness)
		rs := slices.Clone(g.readings)
		slices.SortFunc(rs, byTime)
		if p.Window.Kind == window.Session {
			for _, res := range sessions(p, gk.key, rs, wm) {
				finals[groupKey{pipe: gk.pipe, key: gk.key, start: res.Start}] = res
			}
			continue
		}
		if g.end > wm {
			continue
		}
		var base *window.Reading
		switch p.Window.Kind {
		case window.Tumbling, window.Day, window.Week, window.Month:
			base = prevLast[gk]
		}
		finals[gk] = aggregate(p, gk.key, gk.start, g.end, rs, base)
	}
	// Derived series: every referenced series must have a final result.
	for dk, keys := range seriesOrder {
		p := &pipes[dk.pipe]
		if len(p.Derived) == 0 {
			continue
		}
		starts := map[int64]int64{}
		for gk, res := range finals {
			if gk.pipe == dk.pipe && gk.key.Device == dk.key.Device {
				starts[gk.start] = res.End
			}
		}
		for start, end := range starts {
			for _, d := range p.Derived {
				x, err := window.ParseExpr(d.Expr)
				if err != nil {
					return nil, err
				}
				cov, worst, ok := 1.0, wire.TimeQuality(0), true
				first := true
				var v float64
				for _, t := range x.Terms {
					tv := t.Const
					if t.Channel != "" {
						res, found := lookup(finals, keys, dk.pipe, t.Channel, start)
						if !found {
							ok = false
							break
						}
						if tv, found = res.Value(t.Aggregate); !found {
							ok = false
							break
						}
						cov = min(cov, res.Coverage)
						if first || res.WorstQuality.Worse(worst) {
							worst, first = res.WorstQuality, false
						}
					}
					v += t.Sign * tv
				}
				if !ok {
					continue
				}
				key := window.Key{Device: dk.key.Device, Channel: d.Name}
				finals[groupKey{pipe: dk.pipe, key: key, start: start}] = window.Result{
					Pipeline: p.Name, Key: key, Start: start, End: end,
					Names: []string{"value"}, Values: []float64{v}, Coverage: cov, WorstQuality: worst,
				}
			}
		}
	}
	for _, res := range finals {
		out.Final = append(out.Final, res)
	}
	SortResults(out.Final)
	return out, nil
}

// lookup finds the referenced series' result; among series sharing the
// channel that have a result for the window, the lowest quantity number is
// the one meant.
func lookup(finals map[groupKey]window.Result, keys []window.Key, pipe int, channel string, start int64) (window.Result, bool) {
	var best window.Result
	found := false
	for _, k := range keys {
		if k.Channel != channel || found && k.Quantity >= best.Key.Quantity {
			continue
		}
		if res, ok := finals[groupKey{pipe: pipe, key: k, start: start}]; ok {
			best, found = res, true
		}
	}
	return best, found
}

// SortResults orders results by pipeline, device, channel, quantity, start.
func SortResults(rs []window.Result) {
	slices.SortFunc(rs, func(a, b window.Result) int {
		return cmp.Or(
			cmp.Compare(a.Pipeline, b.Pipeline), cmp.Compare(a.Key.Device, b.Key.Device),
			cmp.Compare(a.Key.Channel, b.Key.Channel), cmp.Compare(a.Key.Quantity, b.Key.Quantity),
			cmp.Compare(a.Start, b.Start))
	})
}

func byTime(a, b window.Reading) int {
	return cmp.Or(cmp.Compare(a.TimeNs, b.TimeNs), cmp.Compare(a.SeqEpoch, b.SeqEpoch), cmp.Compare(a.Seq, b.Seq))
}

func selects(p *window.Pipeline, r window.Reading) bool {
	if len(p.Join) > 0 && !slices.Contains(p.Join, r.Channel) {
		return false
	}
	for _, s := range p.Inputs {
		if s.Matches(r.Device, r.Channel, r.Quantity) {
			return true
		}
	}
	return false
}

// windowsOf lists every window holding t. For sessions it is the reading's
// own gap window, which decides whether it is late.
func windowsOf(p *window.Pipeline, loc *time.Location, t int64) []window.Span {
	if loc == nil {
		loc = time.UTC
		if p.TimeZone != "" {
			loc, _ = time.LoadLocation(p.TimeZone)
		}
	}
	switch p.Window.Kind {
	case window.Tumbling, window.Sliding:
		size, slide := int64(p.Window.Size), int64(p.Window.Slide)
		if p.Window.Kind == window.Tumbling {
			slide = size
		}
		var out []window.Span
		// Window starts are the multiples of slide; scan the ones that can
		// hold t.
		first := (t - size) / slide * slide
		for first > t-size {
			first -= slide
		}
		for s := first; s <= t; s += slide {
			if s <= t && t < s+size {
				out = append(out, window.Span{Start: s, End: s + size})
			}
		}
		return out
	case window.Session:
		rt := t
		if len(p.Join) > 0 {
			rt = t - ((t%int64(time.Second))+int64(time.Second))%int64(time.Second)
		}
		return []window.Span{{Start: rt, End: rt + int64(p.Window.Gap)}}
	}
	local := time.Unix(0, t).In(loc)
	y, m, d := local.Date()
	var s, e time.Time
	switch p.Window.Kind {
	case window.Day:
		s, e = time.Date(y, m, d, 0, 0, 0, 0, loc), time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	case window.Week:
		back := int(local.Weekday()) - 1
		if back < 0 {
			back = 6
		}
		s, e = time.Date(y, m, d-back, 0, 0, 0, 0, loc), time.Date(y, m, d-back+7, 0, 0, 0, 0, loc)
	case window.Month:
		s, e = time.Date(y, m, 1, 0, 0, 0, 0, loc), time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	}
	return []window.Span{{Start: s.UnixNano(), End: e.UnixNano()}}
}

// aggregate computes a window's result from its readings in event-time
// order; base is the series' reading before the window (counters), or nil.
func aggregate(p *window.Pipeline, key window.Key, start, end int64, rs []window.Reading, base *window.Reading) window.Result {
	res := window.Result{
		Pipeline: p.Name, Key: key, Start: start, End: end, Count: int64(len(rs)),
		WorstQuality: worstOf(rs),
		Coverage:     coverage(p, start, end, rs),
	}
	for _, a := range p.Aggregations {
		res.Names = append(res.Names, a.Name)
		var v float64
		f := a.Func
		if f == window.Energy {
			f = window.EnergyBinned
			if key.Quantity == wire.Quantity_QUANTITY_ENERGY {
				f = window.EnergyCounter
			}
		}
		switch f {
		case window.Count, window.Readings:
			v = float64(len(rs))
		case window.Sum:
			v = sum(rs)
		case window.Mean:
			v = sum(rs) / float64(len(rs))
		case window.Min:
			v = rs[0].Value
			for _, r := range rs {
				v = min(v, r.Value)
			}
		case window.Max:
			v = rs[0].Value
			for _, r := range rs {
				v = max(v, r.Value)
			}
		case window.First:
			v = rs[0].Value
		case window.Last:
			v = rs[len(rs)-1].Value
		case window.Stddev:
			v = stddev(rs)
		case window.EnergyCounter:
			prev := base
			for i := range rs {
				if prev != nil {
					if rs[i].Value < prev.Value {
						res.CounterResets++
						v += rs[i].Value
					} else {
						v += rs[i].Value - prev.Value
					}
				}
				prev = &rs[i]
			}
		case window.EnergyBinned:
			v = binned(p, start, end, rs)
		case window.EnergyIntegral:
			maxGap := int64(p.MaxGap)
			if maxGap == 0 {
				maxGap = int64(time.Second)
			}
			for i, r := range rs {
				next := end
				if i+1 < len(rs) {
					next = rs[i+1].TimeNs
				}
				if dt := min(next-r.TimeNs, maxGap); dt > 0 {
					v += r.Value * float64(dt)
				}
			}
			v /= float64(time.Hour)
		}
		if a.Func == window.Readings {
			for _, r := range rs {
				res.Rows = append(res.Rows, window.Row{TimeNs: r.TimeNs, Values: []float64{r.Value}})
			}
		}
		res.Values = append(res.Values, v)
	}
	return res
}

// sum adds in arrival-independent event-time order. The engine adds in
// arrival order, so tests use values whose sums are exact in float64.
func sum(rs []window.Reading) float64 {
	var s float64
	for _, r := range rs {
		s += r.Value
	}
	return s
}

// stddev is the two-pass sample standard deviation.
func stddev(rs []window.Reading) float64 {
	if len(rs) < 2 {
		return 0
	}
	mean := sum(rs) / float64(len(rs))
	var ss float64
	for _, r := range rs {
		ss += (r.Value - mean) * (r.Value - mean)
	}
	return math.Sqrt(ss / float64(len(rs)-1))
}

func worstOf(rs []window.Reading) wire.TimeQuality {
	w := rs[0].Quality
	for _, r := range rs {
		if r.Quality.Worse(w) {
			w = r.Quality
		}
	}
	return w
}

// coverage is the share of CoverageSlot-wide slots of [start, end) holding
// a reading.
func coverage(p *window.Pipeline, start, end int64, rs []window.Reading) float64 {
	slot := int64(p.CoverageSlot())
	used := map[int64]bool{}
	for _, r := range rs {
		used[(r.TimeNs-start)/slot] = true
	}
	total := (end - start + slot - 1) / slot
	return float64(len(used)) / float64(total)
}

type row struct {
	t    int64
	vals []float64
}

// sessions cuts a series' accepted readings (sorted) into closed sessions
// long enough to keep.
func sessions(p *window.Pipeline, key window.Key, rs []window.Reading, wm int64) []window.Result {
	sec := int64(time.Second)
	var rows []row
	if len(p.Join) == 0 {
		for _, r := range rs {
			rows = append(rows, row{r.TimeNs, []float64{r.Value}})
		}
	} else {
		bySec := map[int64]map[string]float64{}
		var secs []int64
		for _, r := range rs { // sorted: later readings overwrite
			s := r.TimeNs - ((r.TimeNs%sec)+sec)%sec
			if bySec[s] == nil {
				bySec[s] = map[string]float64{}
				secs = append(secs, s)
			}
			bySec[s][r.Channel] = r.Value
		}
		for _, s := range secs {
			if len(bySec[s]) != len(p.Join) || p.Active != "" && bySec[s][p.Active] == 0 {
				continue
			}
			vals := make([]float64, len(p.Join))
			for i, c := range p.Join {
				vals[i] = bySec[s][c]
			}
			rows = append(rows, row{s, vals})
		}
	}
	gap := int64(p.Window.Gap)
	var out []window.Result
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && rows[j].t-rows[j-1].t < gap && (p.Window.MaxDuration == 0 || rows[j].t-rows[i].t < int64(p.Window.MaxDuration)) {
			j++
		}
		start, last := rows[i].t, rows[j-1].t
		end := last + gap
		if end <= wm && last-start >= int64(p.Window.MinDuration) {
			var members []window.Reading
			for _, r := range rows[i:j] {
				members = append(members, window.Reading{TimeNs: r.t, Value: r.vals[0], Quality: wire.TimeQuality_TIME_QUALITY_SYNCED})
			}
			res := aggregate(p, key, start, end, members, nil)
			res.Count = int64(j - i)
			res.Rows = nil
			for _, r := range rows[i:j] {
				res.Rows = append(res.Rows, window.Row{TimeNs: r.t, Values: r.vals})
			}
			res.WorstQuality = wire.TimeQuality_TIME_QUALITY_SYNCED
			for _, r := range rs {
				rt := r.TimeNs
				if len(p.Join) > 0 {
					rt = r.TimeNs - ((r.TimeNs%sec)+sec)%sec
				}
				if rt >= start && rt <= last && r.Quality.Worse(res.WorstQuality) {
					res.WorstQuality = r.Quality
				}
			}
			out = append(out, res)
		}
		i = j
	}
	return out
}

// binned is EnergyBinned from the sorted readings: per slot, the readings
// before the last at their mean power from the first reading to the last,
// then the last value held until the next reading, at most max_gap, never
// past the window end.
func binned(p *window.Pipeline, start, end int64, rs []window.Reading) float64 {
	slot := int64(p.CoverageSlot())
	maxGap := int64(p.MaxGap)
	if maxGap == 0 {
		maxGap = int64(time.Second)
	}
	var e float64
	for i := 0; i < len(rs); {
		b := (rs[i].TimeNs - start) / slot
		j := i
		var sum float64
		for j < len(rs) && (rs[j].TimeNs-start)/slot == b {
			sum += rs[j].Value
			j++
		}
		first, last := rs[i], rs[j-1]
		if n := j - i; n > 1 {
			e += (sum - last.Value) / float64(n-1) * float64(last.TimeNs-first.TimeNs)
		}
		next := end
		if j < len(rs) {
			next = rs[j].TimeNs
		}
		if hold := min(maxGap, next-last.TimeNs, end-last.TimeNs); hold > 0 {
			e += last.Value * float64(hold)
		}
		i = j
	}
	return e / float64(time.Hour)
}
