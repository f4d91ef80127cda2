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
	panes := s.panes()
	if n := len(panes); n > 0 && panes[n-1].start == start {
		return panes[n-1]
	}
	i, found := slices.BinarySearchFunc(panes, start, func(w *win, st int64) int { return cmp.Compare(w.start, st) })
	if found {
		return panes[i]
	}
	w := e.newWin(p, Span{start, start + p.slide}, s.needBins)
	s.setPanes(slices.Insert(panes, i, w))
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
	panes := s.panes()
	lo, _ := slices.BinarySearchFunc(panes, rec.start, func(w *win, st int64) int { return cmp.Compare(w.start, st) })
	for _, pn := range panes[lo:] {
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
		for _, b := range pn.bins {
			b.nslot += uint64(off)
			m.bins = append(m.bins, b)
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
	w.binned = bins
	w.bins = w.bins[:0]
}

// bin accumulates the readings of one coverage slot for EnergyBinned. A
// window holds bins only for slots with readings, in slot order, so its
// cost follows the slots its readings cover (56 B each), not the window's
// length. Of the slot's latest reading (by event time, ties broken by
// sequence) it keeps what ordering and the energy need: time, value, epoch
// and sequence.
type bin struct {
	sum       float64
	firstT    int64
	lastT     int64
	lastV     float64
	lastEpoch uint64
	lastSeq   uint64
	// nslot is the reading count << 16 | the slot index (a window has at
	// most maxSlots slots; a slot cannot hold 2^48 readings).
	nslot uint64
}

const binSlotBits = 16

func (b *bin) n() uint64    { return b.nslot >> binSlotBits }
func (b *bin) slot() uint64 { return b.nslot & (1<<binSlotBits - 1) }

// after reports whether pt comes after the bin's latest reading: cmpPoint
// order on (time, epoch, seq).
func (b *bin) after(pt *point) bool {
	return cmp.Or(cmp.Compare(pt.t, b.lastT), cmp.Compare(pt.epoch, b.lastEpoch), cmp.Compare(pt.seq, b.lastSeq)) > 0
}

// bin returns the bin of slot, inserting an empty one in slot order. In
// event-time order that is the last bin or a new one after it. The slice
// starts with room for one bin and grows by a quarter at a time, never
// past the window's slot count, so a window costs at most 25 % more than
// the bins it holds.
func (w *win) bin(slot int64) *bin {
	n := len(w.bins)
	if n > 0 && int64(w.bins[n-1].slot()) == slot {
		return &w.bins[n-1]
	}
	i := n
	if n > 0 && int64(w.bins[n-1].slot()) > slot {
		var found bool
		i, found = slices.BinarySearchFunc(w.bins, slot, func(b bin, s int64) int { return cmp.Compare(int64(b.slot()), s) })
		if found {
			return &w.bins[i]
		}
	}
	if n == cap(w.bins) {
		grown := make([]bin, n, min(int(w.nslots), n+1+n/4))
		copy(grown, w.bins)
		w.bins = grown
	}
	w.bins = slices.Insert(w.bins, i, bin{nslot: uint64(slot)})
	return &w.bins[i]
}

func (e *Engine) release(w *win) {
	e.stats.OpenWindows--
	// A window still referenced by the pending list must not be reused.
	if len(e.pending) == 0 {
		e.recycle(w)
	}
}

// maxFreeBins is the most bins a recycled window keeps room for: the free
// list (at most 2^16 windows) then holds at most 59 MB of bins, and a
// window closing with a full day of them does not pin them.
const maxFreeBins = 16

// recycle puts a window no longer referenced on the free list.
func (e *Engine) recycle(w *win) {
	if len(e.free) >= 1<<16 {
		return
	}
	if cap(w.bins) > maxFreeBins {
		w.bins = nil
	}
	e.free = append(e.free, w)
}

func (w *win) add(p *pipe, r *Reading, needPts bool) {
	pt := point{t: r.TimeNs, v: r.Value, epoch: r.SeqEpoch, seq: r.Seq}
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
	if w.binned {
		b := w.bin(slot)
		first := b.n() == 0
		if first || pt.t < b.firstT {
			b.firstT = pt.t
		}
		if first || b.after(&pt) {
			b.lastT, b.lastV, b.lastEpoch, b.lastSeq = pt.t, pt.v, pt.epoch, pt.seq
		}
		b.sum += v
		b.nslot += 1 << binSlotBits
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

// binnedEnergy integrates power (W) kept as per-slot summaries (the
// slots holding readings, in slot order) into Wh. Within a slot, the
// readings before the last stand for the span from the first reading to
// the last at their mean power (exact for regular sampling); the last
// reading holds until the next reading, at most maxGap, never past end.
func binnedEnergy(bins []bin, end, maxGap int64) float64 {
	var e float64
	for i := range bins {
		b := &bins[i]
		if n := b.n(); n > 1 {
			e += (b.sum - b.lastV) / float64(n-1) * float64(b.lastT-b.firstT)
		}
		next := end
		if i+1 < len(bins) {
			next = bins[i+1].firstT
		}
		if hold := min(maxGap, next-b.lastT, end-b.lastT); hold > 0 {
			e += b.lastV * float64(hold)
		}
	}
	return e / nsPerHour
}
