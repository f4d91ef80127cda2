package api

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"slices"
	"strings"
	"time"
)

// Chart bounds: every chart the dashboard draws has at most this many
// series and points per series, whatever the data behind it.
const (
	maxChartSeries = 8
	maxChartPoints = 240
	maxBars        = 31
)

// chartColors are the series colours, in order (distinguishable, also in
// grey scale by their lightness).
var chartColors = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

// palette gives every channel of a device the same colour in every chart:
// by its place among the device's channel names, sorted, rest last.
type palette map[string]string

func newPalette(names []string) palette {
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	p := palette{}
	for _, n := range names {
		p[n] = chartColors[len(p)%len(chartColors)]
	}
	return p
}

func (p palette) of(name string) string {
	if c, ok := p[name]; ok {
		return c
	}
	c := chartColors[len(p)%len(chartColors)]
	p[name] = c
	return c
}

// esc escapes text for an SVG text node or attribute inside HTML.
func esc(s string) string { return html.EscapeString(s) }

// buckets downsamples a time series into n equal time buckets over
// [from, to): each keeps the mean of its values. Its memory is n buckets,
// whatever the number of values added.
type buckets struct {
	from, to int64
	sum      []float64
	cnt      []int
}

func newBuckets(from, to time.Time, n int) *buckets {
	return &buckets{from: from.UnixNano(), to: to.UnixNano(), sum: make([]float64, n), cnt: make([]int, n)}
}

// add puts one value at time t (ns) in its bucket; values outside the range
// or not finite are ignored.
func (b *buckets) add(t int64, v float64) {
	if t < b.from || t >= b.to || math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	i := int(float64(t-b.from) / float64(b.to-b.from) * float64(len(b.sum)))
	i = min(max(i, 0), len(b.sum)-1)
	b.sum[i] += v
	b.cnt[i]++
}

// points are the buckets' means; NaN marks an empty bucket (a gap).
func (b *buckets) points() []float64 {
	out := make([]float64, len(b.sum))
	for i := range out {
		out[i] = math.NaN()
		if b.cnt[i] > 0 {
			out[i] = b.sum[i] / float64(b.cnt[i])
		}
	}
	return out
}

// lineSeries is one line of a line chart: evenly spaced points over the
// chart's time range, NaN for gaps.
type lineSeries struct {
	Name   string
	Color  string
	Points []float64
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten (at least 1).
func niceMax(v float64) float64 {
	if !(v > 1) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// fmtNum prints a value compactly: 1234 → "1.2k".
func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case a >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	case a >= 10 || a == 0:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

const (
	svgW, svgH           = 720, 240
	padL, padR, padT, pB = 52, 12, 10, 28
)

// lineChart draws series over [from, to) as an SVG line chart with a value
// axis in unit. Each series is one <path class="series"> whose d holds one
// M or L per point drawn; gaps start a new M.
func lineChart(title, unit string, from, to time.Time, loc *time.Location, series []lineSeries) template.HTML {
	var b strings.Builder
	hi := 0.0
	lo := 0.0
	for _, s := range series {
		for _, v := range s.Points {
			if !math.IsNaN(v) {
				hi, lo = max(hi, v), min(lo, v)
			}
		}
	}
	top := niceMax(hi)
	bottom := -niceMax(-lo)
	if lo >= 0 {
		bottom = 0
	}
	w, h := float64(svgW-padL-padR), float64(svgH-padT-pB)
	y := func(v float64) float64 { return padT + h*(top-v)/(top-bottom) }
	fmt.Fprintf(&b, `<svg class="chart line" viewBox="0 0 %d %d" role="img" aria-label="%s">`, svgW, svgH, esc(title))
	valueGrid(&b, bottom, top, y, unit)
	// Time axis: 4 labels.
	for i := 0; i <= 4; i++ {
		t := from.Add(time.Duration(float64(to.Sub(from)) * float64(i) / 4))
		anchor := "middle"
		if i == 4 {
			anchor = "end"
		}
		fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%d" text-anchor="%s">%s</text>`,
			padL+w*float64(i)/4, svgH-8, anchor, esc(t.In(loc).Format("15:04")))
	}
	for _, s := range series {
		n := len(s.Points)
		if n == 0 {
			continue
		}
		var d strings.Builder
		maxStep := gapSteps(s.Points)
		prev := -1
		for i, v := range s.Points {
			if math.IsNaN(v) {
				continue
			}
			cmd := "L"
			if prev < 0 || i-prev > maxStep {
				cmd = "M"
			}
			prev = i
			x := padL + w*(float64(i)+0.5)/float64(n)
			fmt.Fprintf(&d, "%s%.1f %.1f ", cmd, x, y(v))
		}
		fmt.Fprintf(&b, `<path class="series" data-series="%s" stroke="%s" d="%s"><title>%s</title></path>`,
			esc(s.Name), s.Color, strings.TrimSpace(d.String()), esc(s.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// gapSteps is how many buckets apart two points of a line may be and still
// be joined: three times the median spacing of its points, so a series
// sparser than the buckets is drawn as a line, and a real gap (a device
// offline) as a break.
func gapSteps(points []float64) int {
	var steps []int
	prev := -1
	for i, v := range points {
		if !math.IsNaN(v) {
			if prev >= 0 {
				steps = append(steps, i-prev)
			}
			prev = i
		}
	}
	if len(steps) == 0 {
		return 1
	}
	slices.Sort(steps)
	return 3 * steps[len(steps)/2]
}

// barDay is one day of the stacked energy chart.
type barDay struct {
	// Slot is the day's place on the chart, 0 the oldest day shown.
	Slot  int
	Label string
	// Parts are the circuits' energies in Wh, in the order of the chart's
	// circuits (NaN: no result).
	Parts []float64
	// Total is the main meter's energy (NaN: none); drawn as a marker.
	Total float64
	// Partial marks a day still running (summed from shorter windows).
	Partial bool
}

// stackedBars draws one bar per day in slots places (a day without data
// leaves its place empty), its circuits stacked (negative parts,
// e.g. a rest below zero, stack downwards), the main meter's total as a
// marker. Each segment is a <rect class="seg">.
func stackedBars(title string, slots int, circuits, colors []string, days []barDay) template.HTML {
	var b strings.Builder
	hi, lo := 0.0, 0.0
	for _, d := range days {
		pos, neg := 0.0, 0.0
		for _, v := range d.Parts {
			if math.IsNaN(v) {
				continue
			}
			if v >= 0 {
				pos += v
			} else {
				neg += v
			}
		}
		hi, lo = max(hi, pos), min(lo, neg)
		if !math.IsNaN(d.Total) {
			hi = max(hi, d.Total)
		}
	}
	top := niceMax(hi)
	bottom := 0.0
	if lo < 0 {
		bottom = -niceMax(-lo)
	}
	w, h := float64(svgW-padL-padR), float64(svgH-padT-pB)
	y := func(v float64) float64 { return padT + h*(top-v)/(top-bottom) }
	fmt.Fprintf(&b, `<svg class="chart bars" viewBox="0 0 %d %d" role="img" aria-label="%s">`, svgW, svgH, esc(title))
	valueGrid(&b, bottom, top, y, "Wh")
	slot := w / float64(max(slots, 1))
	bw := slot * 0.6
	for _, d := range days {
		x := padL + slot*float64(d.Slot) + (slot-bw)/2
		pos, neg := 0.0, 0.0
		cls := "seg"
		if d.Partial {
			cls = "seg partial"
		}
		for c, v := range d.Parts {
			if math.IsNaN(v) || v == 0 {
				continue
			}
			var y0, y1 float64
			if v > 0 {
				y0, y1 = y(pos+v), y(pos)
				pos += v
			} else {
				y0, y1 = y(neg), y(neg+v)
				neg += v
			}
			fmt.Fprintf(&b, `<rect class="%s" data-circuit="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %.0f Wh</title></rect>`,
				cls, esc(circuits[c]), x, y0, bw, max(y1-y0, 0.5), colors[c], esc(d.Label), esc(circuits[c]), v)
		}
		if !math.IsNaN(d.Total) {
			fmt.Fprintf(&b, `<line class="total" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"><title>%s total: %.0f Wh</title></line>`,
				x-3, x+bw+3, y(d.Total), y(d.Total), esc(d.Label), d.Total)
		}
		fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%d" text-anchor="middle">%s</text>`, x+bw/2, svgH-8, esc(d.Label))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
