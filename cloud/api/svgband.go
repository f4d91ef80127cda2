package api

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"
)

// bandChart draws one channel's anomaly band over [from, to): its scored
// windows (s.Past, up to now) as a shaded band (<path class="band">) from
// lower to upper, the expected value (<path class="expected">) and the
// actual values (<path class="actual">); the flagged windows each as a
// <g class="anomaly" data-kind="…"> (a highlighted column and a dot on
// the actual value, its title naming the kind and the numbers); its
// forecast windows (s.Future) as a lighter band (<path
// class="band-forecast">) around the forecast (<path class="forecast">); a line marks
// now. Points sit at their window's middle; a missing window breaks the
// lines and the band. It draws at most len(Past)+len(Future) points per
// path, which the caller bounds.
func bandChart(title string, from, now, to time.Time, loc *time.Location, s bandSeries) template.HTML {
	var b strings.Builder
	hi, lo := 0.0, 0.0
	for _, ps := range [][]bandPoint{s.Past, s.Future} {
		for _, p := range ps {
			for _, v := range []float64{p.Expected, p.Lower, p.Upper, p.Actual} {
				if !math.IsNaN(v) && !math.IsInf(v, 0) {
					hi, lo = max(hi, v), min(lo, v)
				}
			}
		}
	}
	top := niceMax(hi)
	bottom := 0.0
	if lo < 0 {
		bottom = -niceMax(-lo)
	}
	w, h := float64(svgW-padL-padR), float64(svgH-padT-pB)
	span := float64(to.Sub(from))
	x := func(t time.Time) float64 { return padL + w*min(max(float64(t.Sub(from))/span, 0), 1) }
	mid := func(p bandPoint) float64 { return x(p.Start.Add(p.End.Sub(p.Start) / 2)) }
	y := func(v float64) float64 { return padT + h*(top-min(max(v, bottom), top))/(top-bottom) }
	fmt.Fprintf(&b, `<svg class="chart band" viewBox="0 0 %d %d" role="img" aria-label="%s">`, svgW, svgH, esc(title))
	valueGrid(&b, bottom, top, y, "Wh")
	for i := 0; i <= 4; i++ {
		t := from.Add(time.Duration(span * float64(i) / 4))
		anchor := "middle"
		if i == 4 {
			anchor = "end"
		}
		fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%d" text-anchor="%s">%s</text>`,
			x(t), svgH-8, anchor, esc(t.In(loc).Format("Mon 15:04")))
	}
	// The flagged windows' columns go under the lines, their dots above.
	tip := func(p bandPoint) string {
		return fmt.Sprintf(`<title>%s %s–%s: %s, actual %s, expected %s (band %s to %s), score %s</title>`,
			esc(s.Channel), esc(p.Start.In(loc).Format("Mon 15:04")), esc(p.End.In(loc).Format("15:04")),
			esc(kindName(p.Kind)), fmtNum(p.Actual), fmtNum(p.Expected), fmtNum(p.Lower), fmtNum(p.Upper), fmtNum(p.Score))
	}
	for _, p := range s.Past {
		if p.Kind != 0 {
			x0, x1 := x(p.Start), x(p.End)
			fmt.Fprintf(&b, `<g class="anomaly" data-kind="%s"><rect class="flag" x="%.1f" y="%d" width="%.1f" height="%.1f"/>%s</g>`,
				esc(kindName(p.Kind)), x0, padT, max(x1-x0, 1), h, tip(p))
		}
	}
	band := func(cls string, ps []bandPoint) {
		var d strings.Builder
		for _, run := range runs(ps) {
			for i, p := range run {
				cmd := "L"
				if i == 0 {
					cmd = "M"
				}
				fmt.Fprintf(&d, "%s%.1f %.1f ", cmd, mid(p), y(p.Upper))
			}
			for i := len(run) - 1; i >= 0; i-- {
				fmt.Fprintf(&d, "L%.1f %.1f ", mid(run[i]), y(run[i].Lower))
			}
			d.WriteString("Z ")
		}
		if d.Len() > 0 {
			fmt.Fprintf(&b, `<path class="%s" d="%s"/>`, cls, strings.TrimSpace(d.String()))
		}
	}
	line := func(cls, stroke string, ps []bandPoint, v func(bandPoint) float64) {
		var d strings.Builder
		for _, run := range runs(ps) {
			cmd := "M"
			for _, p := range run {
				if math.IsNaN(v(p)) {
					cmd = "M"
					continue
				}
				fmt.Fprintf(&d, "%s%.1f %.1f ", cmd, mid(p), y(v(p)))
				cmd = "L"
			}
		}
		if d.Len() > 0 {
			fmt.Fprintf(&b, `<path class="%s" data-series="%s"%s d="%s"/>`, cls, esc(s.Channel), stroke, strings.TrimSpace(d.String()))
		}
	}
	expected := func(p bandPoint) float64 { return p.Expected }
	band("band", s.Past)
	band("band-forecast", s.Future)
	line("expected", "", s.Past, expected)
	line("forecast", "", s.Future, expected)
	line("actual", ` stroke="`+s.Color+`"`, s.Past, func(p bandPoint) float64 { return p.Actual })
	for _, p := range s.Past {
		if p.Kind != 0 && !math.IsNaN(p.Actual) {
			fmt.Fprintf(&b, `<circle class="anomaly-dot" cx="%.1f" cy="%.1f" r="3.5">%s</circle>`, mid(p), y(p.Actual), tip(p))
		}
	}
	fmt.Fprintf(&b, `<line class="now" x1="%.1f" x2="%.1f" y1="%d" y2="%.1f"/><text class="axis" x="%.1f" y="%d" text-anchor="middle">now</text>`,
		x(now), x(now), padT, padT+h, x(now), padT+8)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// runs cuts time-ordered windows into runs of adjacent ones (each starting
// where the one before ends or earlier).
func runs(ps []bandPoint) [][]bandPoint {
	var out [][]bandPoint
	start := 0
	for i := 1; i <= len(ps); i++ {
		if i == len(ps) || ps[i].Start.After(ps[i-1].End) {
			out = append(out, ps[start:i])
			start = i
		}
	}
	return out
}

// valueGrid draws a chart's value axis from bottom to top in 4 steps, with
// its grid lines and unit.
func valueGrid(b *strings.Builder, bottom, top float64, y func(float64) float64, unit string) {
	for i := 0; i <= 4; i++ {
		v := bottom + (top-bottom)*float64(i)/4
		fmt.Fprintf(b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, padL, svgW-padR, y(v), y(v))
		fmt.Fprintf(b, `<text class="axis" x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-4, y(v)+4, esc(fmtNum(v)))
	}
	fmt.Fprintf(b, `<text class="axis" x="4" y="%d">%s</text>`, padT+8, esc(unit))
}
