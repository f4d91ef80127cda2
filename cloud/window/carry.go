// Counters across windows: the energy of a cumulative counter read less
// often than its windows (a daily reading into daily windows) is the
// difference between consecutive readings, attributed to the window of the
// later one.

package window

import (
	"cmp"
	"fmt"
	"slices"
)

// carries reports whether the pipeline's windows tile time without
// overlapping (tumbling and calendar windows), so that every increment
// between consecutive readings of a counter belongs to exactly one window:
// the later reading's.
func (p *pipe) carries() bool {
	switch p.spec.Window.Kind {
	case Tumbling, Day, Week, Month:
		return true
	}
	return false
}

// counterBase returns the reading of carry series s just before window w:
// the last reading of the nearest earlier window still held, else the last
// reading of the latest window already purged, else nil (nothing known
// before w: the window counts only its own increments).
func (e *Engine) counterBase(s *series, w *win) *point {
	if !s.carry {
		return nil
	}
	i, _ := slices.BinarySearchFunc(s.wins, w.start, func(x *win, start int64) int { return cmp.Compare(x.start, start) })
	for j := i - 1; j >= 0; j-- {
		if x := s.wins[j]; x.count > 0 && x.start < w.start {
			return &x.last
		}
	}
	return s.base
}

// carryNext: a reading r just added to window w of carry series si may be
// the new last reading of w, which is the base of the next window held;
// that window's energy changes, so it is re-emitted like a window that took
// a reading (re-fired when already fired, dirty while open).
func (e *Engine) carryNext(si int32, w *win, r *Reading, wm int64) {
	s := &e.series[si]
	if n := len(s.wins); n == 0 || s.wins[n-1] == w {
		return // the common case: w is the newest window
	}
	if w.last.t != r.TimeNs || w.last.epoch != r.SeqEpoch || w.last.seq != r.Seq {
		return // not the last reading of w
	}
	i, _ := slices.BinarySearchFunc(s.wins, w.end, func(x *win, start int64) int { return cmp.Compare(x.start, start) })
	if i >= len(s.wins) {
		return
	}
	nw := s.wins[i]
	nw.dirty = true
	if nw.end <= wm {
		if !nw.pending {
			nw.pending = true
			e.pending = append(e.pending, pendingRefire{si, nw})
		}
		return
	}
	e.setDirtyOpen(s.dp)
}

// keepBase records the last reading of window w, about to be purged, as the
// series' base when it is the latest purged so far.
func (s *series) keepBase(w *win) {
	if w.count == 0 || s.base != nil && cmpPoint(w.last, *s.base) <= 0 {
		return
	}
	b := w.last
	s.base = &b
}

// writeBases appends the counter bases of device d's series to its state:
// their count, then each one's ordinal among the device's series (in
// device-pipeline, then series order) and its point. A device without
// bases writes a zero count.
func (e *Engine) writeBases(w *enc, d *device) {
	var n uint64
	e.eachSeries(d, func(_ int, s *series) {
		if s.base != nil {
			n++
		}
	})
	w.u(n)
	e.eachSeries(d, func(k int, s *series) {
		if s.base != nil {
			w.u(uint64(k))
			writePoint(w, *s.base)
		}
	})
}

// readBases reads what writeBases wrote, in a state of the given version
// (whose points it encodes as readPoint reads them).
func (e *Engine) readBases(r *dec, d *device, version uint64) {
	n := r.n(6)
	bySeries := make(map[int]point, n)
	for range n {
		k := int(r.u())
		pt := readPoint0(r, version)
		if r.err != nil {
			return
		}
		bySeries[k] = pt
	}
	found := 0
	e.eachSeries(d, func(k int, s *series) {
		if pt, ok := bySeries[k]; ok && s.carry {
			s.base = &pt
			found++
		}
	})
	if found != len(bySeries) && r.err == nil {
		r.err = fmt.Errorf("%w: device %s: counter base of a series that has none", ErrCheckpoint, d.name)
	}
}

// eachSeries visits device d's series in checkpoint order.
func (e *Engine) eachSeries(d *device, fn func(k int, s *series)) {
	k := 0
	for _, dpi := range d.dps {
		for _, si := range e.dps[dpi].series {
			fn(k, &e.series[si])
			k++
		}
	}
}
