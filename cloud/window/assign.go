// Assignment: the watermark and the windows an event time belongs to.

package window

import (
	"slices"
	"time"
)

func (p *pipe) watermark(has bool, maxT int64) int64 {
	if !has {
		return noTime
	}
	if maxT < noTime+p.ooo {
		return noTime
	}
	return maxT - p.ooo
}

// assign returns the windows t belongs to, in e.spans.
func (e *Engine) assign(p *pipe, d *device, t int64) []Span {
	e.spans = e.spans[:0]
	switch p.spec.Window.Kind {
	case Tumbling:
		s := floorDiv(t, p.size) * p.size
		e.spans = append(e.spans, Span{s, s + p.size})
	case Sliding:
		last := floorDiv(t, p.slide) * p.slide
		for s := last; s > t-p.size; s -= p.slide {
			e.spans = append(e.spans, Span{s, s + p.size})
		}
		slices.Reverse(e.spans)
	default:
		loc := p.loc
		if d.loc != nil {
			loc = d.loc
		}
		s, end := CalendarSpan(p.spec.Window.Kind, t, loc)
		e.spans = append(e.spans, Span{s, end})
	}
	return e.spans
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// CalendarSpan returns the Day, Week (ISO, from Monday) or Month window
// holding t in loc: [local midnight, next local midnight) as UTC ns.
func CalendarSpan(k Kind, t int64, loc *time.Location) (start, end int64) {
	tm := time.Unix(0, t).In(loc)
	y, m, d := tm.Date()
	var s, n time.Time
	switch k {
	case Week:
		wd := (int(tm.Weekday()) + 6) % 7
		s = time.Date(y, m, d-wd, 0, 0, 0, 0, loc)
		n = time.Date(y, m, d-wd+7, 0, 0, 0, 0, loc)
	case Month:
		s = time.Date(y, m, 1, 0, 0, 0, 0, loc)
		n = time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	default:
		s = time.Date(y, m, d, 0, 0, 0, 0, loc)
		n = time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	}
	return s.UnixNano(), n.UnixNano()
}
