package analytics

import (
	"math"
	"slices"
	"time"
)

// point is one value of a source series at a window start.
type point struct {
	start int64 // window start, ns
	value float64
}

// slotStat is the robust summary of the values seen in one calendar slot
// (and its neighbours).
type slotStat struct {
	median, scale float64 // scale = 1.4826 × MAD
	n             int
}

// seasonalModel is a time-of-day × weekday baseline of one series: per
// slot the median and MAD of the history, the weekday slot shrunk toward
// the time-of-day slot when it has few values. Its memory is 8 × the
// number of slots per day × 32 bytes (24 KiB at 15 minutes).
type seasonalModel struct {
	res   time.Duration
	loc   *time.Location
	p     Params
	tod   []slotStat
	wk    [7][]slotStat
	floor float64 // smallest scale: FloorShare × mean |value|
	// zeroRun is the shortest run of zeros flagged; high the level a spike
	// must exceed.
	zeroRun int
	high    float64
}

// Params are the model's and the detector's tuning.
type Params struct {
	// Neighbours pools the values of this many slots on each side of a
	// slot into its estimate (1: three 15-minute slots).
	Neighbours int `yaml:"neighbours"`
	// Shrink is the weight, in values, of the time-of-day estimate when it
	// is blended with the weekday estimate: weekday weight n/(n+Shrink).
	Shrink float64 `yaml:"shrink"`
	// Z is the band's half-width in robust standard deviations.
	Z float64 `yaml:"z"`
	// SpikeZ flags a single window this many robust deviations above the
	// expected value (and above HighQuantile of the history).
	SpikeZ float64 `yaml:"spike_z"`
	// Persist flags a run of this many consecutive windows outside the band.
	Persist int `yaml:"persist"`
	// FloorShare bounds the scale from below by this share of the series'
	// mean absolute value (a slot whose values never vary still has a band).
	FloorShare float64 `yaml:"floor_share"`
	// ZeroRunFactor flags a run of windows at exactly 0 (a meter stuck at
	// zero) once it is this many times longer than the 75th percentile of
	// the zero runs in the history (and at least Persist windows long).
	ZeroRunFactor float64 `yaml:"zero_run_factor"`
	// HighQuantile: a spike must also exceed this quantile of the series'
	// whole history (a level the series reached no more than rarely).
	HighQuantile float64 `yaml:"high_quantile"`
}

// DefaultParams are the tuning the evaluation in docs/analytics.md measured.
func DefaultParams() Params {
	return Params{Neighbours: 1, Shrink: 6, Z: 4, SpikeZ: 6, Persist: 6, FloorShare: 0.25, ZeroRunFactor: 1.5, HighQuantile: 0.99}
}

// slotOf is the local time-of-day slot and weekday of t.
func slotOf(t int64, res time.Duration, loc *time.Location) (slot int, weekday int) {
	lt := time.Unix(0, t).In(loc)
	sec := lt.Hour()*3600 + lt.Minute()*60 + lt.Second()
	return sec / int(res/time.Second), int(lt.Weekday())
}

// fitSeasonal fits the baseline to pts; ok is false without any value.
func fitSeasonal(pts []point, res time.Duration, loc *time.Location, p Params) (*seasonalModel, bool) {
	if len(pts) == 0 {
		return nil, false
	}
	slots := int(24 * time.Hour / res)
	tod := make([][]float64, slots)
	var wk [7][][]float64
	for d := range wk {
		wk[d] = make([][]float64, slots)
	}
	sumAbs := 0.0
	all := make([]float64, 0, len(pts))
	var runs []int
	run := 0
	for i, pt := range pts {
		all = append(all, pt.value)
		if pt.value == 0 && i > 0 && pt.start-pts[i-1].start == int64(res) && run > 0 {
			run++
		} else {
			if run > 0 {
				runs = append(runs, run)
			}
			run = 0
			if pt.value == 0 {
				run = 1
			}
		}
		s, d := slotOf(pt.start, res, loc)
		if s >= slots {
			continue
		}
		sumAbs += math.Abs(pt.value)
		for k := -p.Neighbours; k <= p.Neighbours; k++ {
			j := ((s+k)%slots + slots) % slots
			tod[j] = append(tod[j], pt.value)
			wk[d][j] = append(wk[d][j], pt.value)
		}
	}
	m := &seasonalModel{res: res, loc: loc, p: p, tod: make([]slotStat, slots),
		floor: max(p.FloorShare*sumAbs/float64(len(pts)), 1e-9), zeroRun: p.Persist}
	// The run at the end of the history may still be going on: left out.
	if len(runs) > 0 {
		slices.Sort(runs)
		p75 := runs[min(len(runs)-1, int(0.75*float64(len(runs))))]
		m.zeroRun = max(p.Persist, int(math.Ceil(p.ZeroRunFactor*float64(p75))))
	}
	slices.Sort(all)
	m.high = all[min(len(all)-1, int(p.HighQuantile*float64(len(all))))]
	for s := range tod {
		m.tod[s] = summarize(tod[s])
	}
	for d := range wk {
		m.wk[d] = make([]slotStat, slots)
		for s := range wk[d] {
			m.wk[d][s] = summarize(wk[d][s])
		}
	}
	return m, true
}

func summarize(v []float64) slotStat {
	if len(v) == 0 {
		return slotStat{}
	}
	slices.Sort(v)
	med := median(v)
	dev := make([]float64, len(v))
	for i, x := range v {
		dev[i] = math.Abs(x - med)
	}
	slices.Sort(dev)
	return slotStat{median: med, scale: 1.4826 * median(dev), n: len(v)}
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// band is the model's expectation for one window.
type band struct {
	expected, lower, upper, scale float64
}

// predict returns the band of the window starting at t; ok is false when
// the model has no value for its slot.
func (m *seasonalModel) predict(t int64) (band, bool) {
	s, d := slotOf(t, m.res, m.loc)
	if s >= len(m.tod) || m.tod[s].n == 0 {
		return band{}, false
	}
	td, w := m.tod[s], m.wk[d][s]
	wt := float64(w.n) / (float64(w.n) + m.p.Shrink)
	exp := wt*w.median + (1-wt)*td.median
	scale := max(wt*w.scale+(1-wt)*td.scale, m.floor)
	return band{expected: exp, lower: exp - m.p.Z*scale, upper: exp + m.p.Z*scale, scale: scale}, true
}

// Kind is what the detector found in a window.
type Kind int

// The kinds of anomaly, as the `kind` value of an anomaly result.
const (
	KindNone Kind = iota
	// KindSpike is one window far above the band (SpikeZ).
	KindSpike
	// KindHigh is Persist or more consecutive windows above the band
	// (an appliance left on).
	KindHigh
	// KindLow is Persist or more consecutive windows below the band, or a
	// run of zeros much longer than the history's (a meter stuck at zero).
	KindLow
)

// String is the kind's metric label.
func (k Kind) String() string {
	switch k {
	case KindSpike:
		return "spike"
	case KindHigh:
		return "sustained_high"
	case KindLow:
		return "sustained_low"
	}
	return "none"
}

// Kinds lists the anomaly kinds (not KindNone).
func Kinds() []Kind { return []Kind{KindSpike, KindHigh, KindLow} }

// side is +1 above the band, -1 below it, 0 inside.
func (m *seasonalModel) side(b band, v float64) int {
	switch {
	case v > b.upper:
		return 1
	case v < b.lower:
		return -1
	}
	return 0
}

// verdict scores the window at index i of a series sorted by start, using
// the windows before it (contiguous at resolution res) for the run rule.
func (m *seasonalModel) verdict(pts []point, i int) (band, Kind, bool) {
	b, ok := m.predict(pts[i].start)
	if !ok {
		return band{}, KindNone, false
	}
	if pts[i].value == 0 {
		zeros := 1
		for j := i - 1; j >= 0 && zeros < m.zeroRun && pts[j].value == 0 && pts[j+1].start-pts[j].start == int64(m.res); j-- {
			zeros++
		}
		if zeros >= m.zeroRun {
			return b, KindLow, true
		}
	}
	side := m.side(b, pts[i].value)
	if side == 0 {
		return b, KindNone, true
	}
	run := 1
	for j := i - 1; j >= 0 && run < m.p.Persist; j-- {
		if pts[j+1].start-pts[j].start != int64(m.res) {
			break
		}
		bj, ok := m.predict(pts[j].start)
		if !ok || m.side(bj, pts[j].value) != side {
			break
		}
		run++
	}
	switch {
	case run >= m.p.Persist && side > 0:
		return b, KindHigh, true
	case run >= m.p.Persist:
		return b, KindLow, true
	case side > 0 && pts[i].value > b.expected+m.p.SpikeZ*b.scale && pts[i].value > m.high:
		return b, KindSpike, true
	}
	return b, KindNone, true
}
