// Aggregation: window state per series and the statistics computed from it.

package window

import (
	"cmp"
	"math"
	"math/bits"
	"slices"

	"github.com/gridedge/gridedge/shared/wire"
)

func (e *Engine) add(si int32, joinCol int8, r *Reading, had bool, prevMax int64) {
	s := &e.series[si]
	p := e.pipes[s.pipe]
	wm := p.watermark(had, prevMax)
	if p.spec.Window.Kind == Session {
		e.addSession(si, p, joinCol, r, wm)
		return
	}
	t := r.TimeNs
	if w := s.cur; w != nil && t >= w.start && t < w.end && p.spec.Window.Kind != Sliding && w.end > wm {
		// Hot path: the reading falls in the series' current open window.
		w.add(p, r, s.needPts)
		if !w.dirty {
			w.dirty = true
			e.setDirtyOpen(s.dp)
		}
		if s.carry {
			e.carryNext(si, w, r, wm)
		}
		return
	}
	var late []Span
	accepted := false
	for _, sp := range e.assign(p, &e.devs[s.dev], t) {
		if wm != noTime && sp.End+p.late <= wm {
			late = append(late, sp)
			continue
		}
		w := e.window(s, p, sp, wm)
		if p.paned {
			accepted = true
		} else {
			w.add(p, r, s.needPts)
		}
		if s.carry {
			e.carryNext(si, w, r, wm)
		}
		if sp.End <= wm {
			w.dirty = true
			if !w.pending {
				w.pending = true
				e.pending = append(e.pending, pendingRefire{si, w})
			}
			continue
		}
		w.dirty = true
		e.setDirtyOpen(s.dp)
		if p.spec.Window.Kind != Sliding {
			s.cur = w
		}
	}
	if accepted {
		e.pane(s, p, t).add(p, r, s.needPts)
	}
	if late != nil {
		e.stats.Late++
		e.out.Late = append(e.out.Late, LateReading{Pipeline: p.spec.Name, Reading: *r, Windows: late})
	}
}

// pane finds or creates the pane holding t.
func (e *Engine) pane(s *series, p *pipe, t int64) *win {
	start := floorDiv(t, p.slide) * p.slide
	if n := len(s.panes); n > 0 && s.panes[n-1].start == start {
		return s.panes[n-1]
	}
	i, found := slices.BinarySearchFunc(s.panes, start, func(w *win, st int64) int { return cmp.Compare(w.start, st) })
	if found {
		return s.panes[i]
	}
	w := e.newWin(p, Span{start, start + p.slide}, s.needBins)
	s.panes = slices.Insert(s.panes, i, w)
	return w
}

// windowData returns the data of window rec: rec itself, or for a paned
// pipeline its panes merged into a scratch window valid until the next call.
func (e *Engine) windowData(s *series, p *pipe, rec *win) *win {
	if !p.paned {
		return rec
	}
	m := &e.merged
	slots, pts, bins := m.slots[:0], m.pts[:0], m.bins[:0]
	*m = win{slots: slots, pts: pts, bins: bins}
	m.init(p, Span{rec.start, rec.end}, s.needBins)
	lo, _ := slices.BinarySearchFunc(s.panes, rec.start, func(w *win, st int64) int { return cmp.Compare(w.start, st) })
	for _, pn := range s.panes[lo:] {
		if pn.start >= rec.end {
			break
		}
		if pn.count == 0 {
			continue
		}
		if m.count == 0 {
			m.shift, m.min, m.max, m.first, m.last, m.worst = pn.shift, pn.min, pn.max, pn.first, pn.last, pn.worst
		} else {
			m.min, m.max = min(m.min, pn.min), max(m.max, pn.max)
			if cmpPoint(pn.first, m.first) < 0 {
				m.first = pn.first
			}
			if cmpPoint(pn.last, m.last) > 0 {
				m.last = pn.last
			}
			if pn.worst.Worse(m.worst) {
				m.worst = pn.worst
			}
		}
		// Re-centre the pane's shifted sums on the merged shift.
		d := pn.shift - m.shift
		n := float64(pn.count)
		m.s1 += pn.s1 + n*d
		m.s2 += pn.s2 + 2*d*pn.s1 + n*d*d
		m.count += pn.count
		m.sum += pn.sum
		off := (pn.start - rec.start) / p.slotW
		for i := range int64(pn.nslots) {
			if pn.slots[i>>6]&(1<<(i&63)) != 0 {
				j := off + i
				m.slots[j>>6] |= 1 << (j & 63)
			}
		}
		if len(m.bins) > 0 {
			copy(m.bins[off:], pn.bins)
		}
		m.pts = append(m.pts, pn.sorted()...)
	}
	return m
}

// window finds or creates the state of window sp in s.
func (e *Engine) window(s *series, p *pipe, sp Span, wm int64) *win {
	i, found := slices.BinarySearchFunc(s.wins, sp.Start, func(w *win, start int64) int { return cmp.Compare(w.start, start) })
	if found {
		return s.wins[i]
	}
	var w *win
	if p.paned {
		w = e.newRecord(sp)
	} else {
		w = e.newWin(p, sp, s.needBins)
	}
	s.wins = slices.Insert(s.wins, i, w)
	e.stats.OpenWindows++
	dp := &e.dps[s.dp]
	ev := sp.End
	if sp.End <= wm {
		ev = sp.End + p.late
	}
	dp.nextEvent = min(dp.nextEvent, ev)
	return w
}

func (e *Engine) newWin(p *pipe, sp Span, bins bool) *win {
	var w *win
	if n := len(e.free); n > 0 {
		w = e.free[n-1]
		e.free = e.free[:n-1]
		slots, pts, bs := w.slots[:0], w.pts[:0], w.bins[:0]
		*w = win{slots: slots, pts: pts, bins: bs}
	} else {
		w = &win{}
	}
	w.init(p, sp, bins)
	return w
}

// newRecord returns a window without data: the revision record of a
// paned pipeline's window.
func (e *Engine) newRecord(sp Span) *win {
	if n := len(e.free); n > 0 {
		w := e.free[n-1]
		e.free = e.free[:n-1]
		slots, pts, bs := w.slots[:0], w.pts[:0], w.bins[:0]
		*w = win{start: sp.Start, end: sp.End, slots: slots, pts: pts, bins: bs}
		return w
	}
	return &win{start: sp.Start, end: sp.End}
}

// init sizes the coverage bitmap (and the bins) of a fresh window.
func (w *win) init(p *pipe, sp Span, bins bool) {
	w.start, w.end = sp.Start, sp.End
	n := int((sp.End - sp.Start + p.slotW - 1) / p.slotW)
	w.nslots = int32(n)
	words := (n + 63) / 64
	if words == 1 {
		w.slot0[0] = 0
		w.slots = w.slot0[:]
	} else if cap(w.slots) >= words {
		w.slots = w.slots[:words]
		clear(w.slots)
	} else {
		w.slots = make([]uint64, words)
	}
	if bins {
		if cap(w.bins) >= n {
			w.bins = w.bins[:n]
			clear(w.bins)
		} else {
			w.bins = make([]bin, n)
		}
	} else {
		w.bins = w.bins[:0]
	}
}

// bin accumulates the readings of one coverage slot for EnergyBinned.
type bin struct {
	sum    float64
	n      int64
	firstT int64
	last   point
}

func (e *Engine) release(w *win) {
	e.stats.OpenWindows--
	// A window still referenced by the pending list must not be reused.
	if len(e.pending) == 0 && len(e.free) < 1<<16 {
		e.free = append(e.free, w)
	}
}

func (w *win) add(p *pipe, r *Reading, needPts bool) {
	pt := point{t: r.TimeNs, v: r.Value, epoch: r.SeqEpoch, seq: r.Seq, q: r.Quality}
	v := r.Value
	if w.count == 0 {
		w.shift, w.min, w.max = v, v, v
		w.first, w.last = pt, pt
		w.worst = r.Quality
	} else {
		w.min = min(w.min, v)
		w.max = max(w.max, v)
		if cmpPoint(pt, w.first) < 0 {
			w.first = pt
		}
		if cmpPoint(pt, w.last) > 0 {
			w.last = pt
		}
		if r.Quality.Worse(w.worst) {
			w.worst = r.Quality
		}
	}
	w.count++
	w.sum += v
	dv := v - w.shift
	w.s1 += dv
	w.s2 += dv * dv
	slot := (r.TimeNs - w.start) / p.slotW
	w.slots[slot>>6] |= 1 << (slot & 63)
	if len(w.bins) > 0 {
		b := &w.bins[slot]
		if b.n == 0 || pt.t < b.firstT {
			b.firstT = pt.t
		}
		if b.n == 0 || cmpPoint(pt, b.last) > 0 {
			b.last = pt
		}
		b.sum += v
		b.n++
	}
	if needPts {
		if n := len(w.pts); n > 0 && cmpPoint(pt, w.pts[n-1]) < 0 {
			w.unsorted = true
		}
		w.pts = append(w.pts, pt)
	}
}

func (w *win) sorted() []point {
	if w.unsorted {
		slices.SortFunc(w.pts, cmpPoint)
		w.unsorted = false
	}
	return w.pts
}

func (w *win) coverage() float64 {
	n := 0
	for _, x := range w.slots {
		n += bits.OnesCount64(x)
	}
	return float64(n) / float64(w.nslots)
}

// value computes aggregate i of w. counterResets is set for EnergyCounter;
// base, when not nil, is the series' reading before the window (carry.go).
func (p *pipe) value(w *win, f Func, q wire.Quantity, base *point) (v float64, resets int) {
	switch f.resolve(q) {
	case Count:
		return float64(w.count), 0
	case Sum:
		return w.sum, 0
	case Mean:
		return w.sum / float64(w.count), 0
	case Min:
		return w.min, 0
	case Max:
		return w.max, 0
	case First:
		return w.first.v, 0
	case Last:
		return w.last.v, 0
	case Stddev:
		if w.count < 2 {
			return 0, 0
		}
		n := float64(w.count)
		return math.Sqrt(max(0, (w.s2-w.s1*w.s1/n)/(n-1))), 0
	case EnergyCounter:
		return counterEnergy(w.sorted(), base)
	case EnergyIntegral:
		return integrateStep(w.sorted(), w.end, p.maxGap), 0
	case EnergyBinned:
		return binnedEnergy(w.bins, w.end, p.maxGap), 0
	}
	return 0, 0
}

// counterEnergy is the energy (Wh) a cumulative counter recorded over pts in
// event-time order: the sum of non-negative increments; a decrease is a reset
// after which the new value itself counts (the counter restarted from 0).
// base, when not nil, is the reading before pts[0]: the increment from it
// counts too.
func counterEnergy(pts []point, base *point) (wh float64, resets int) {
	step := func(prev, cur float64) {
		d := cur - prev
		if d < 0 {
			resets++
			d = cur
		}
		wh += d
	}
	if base != nil && len(pts) > 0 {
		step(base.v, pts[0].v)
	}
	for i := 1; i < len(pts); i++ {
		step(pts[i-1].v, pts[i].v)
	}
	return wh, resets
}

// integrateStep integrates power (W) over pts in event-time order into Wh:
// each value holds until the next point, at most maxGap, never past end.
func integrateStep(pts []point, end, maxGap int64) float64 {
	var e float64
	for i, pt := range pts {
		next := end
		if i+1 < len(pts) {
			next = pts[i+1].t
		}
		if dt := min(next-pt.t, maxGap); dt > 0 {
			e += pt.v * float64(dt)
		}
	}
	return e / nsPerHour
}

// binnedEnergy integrates power (W) kept as per-slot summaries into Wh.
// Within a slot, the readings before the last stand for the span from the
// first reading to the last at their mean power (exact for regular
// sampling); the last reading holds until the next reading, at most
// maxGap, never past end.
func binnedEnergy(bins []bin, end, maxGap int64) float64 {
	var e float64
	for i := range bins {
		b := &bins[i]
		if b.n == 0 {
			continue
		}
		if b.n > 1 {
			e += (b.sum - b.last.v) / float64(b.n-1) * float64(b.last.t-b.firstT)
		}
		next := end
		for j := i + 1; j < len(bins); j++ {
			if bins[j].n > 0 {
				next = bins[j].firstT
				break
			}
		}
		if hold := min(maxGap, next-b.last.t, end-b.last.t); hold > 0 {
			e += b.last.v * float64(hold)
		}
	}
	return e / nsPerHour
}
