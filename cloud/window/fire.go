// Firing: emitting results, advancing watermarks and idle time, derived
// values, and handing output to the caller.

package window

import (
	"cmp"
	"slices"

	"github.com/gridedge/gridedge/shared/wire"
)

func (e *Engine) alloc(n int) []float64 {
	if len(e.arena)+n > cap(e.arena) {
		e.arena = make([]float64, 0, max(4096, n))
	}
	s := e.arena[len(e.arena) : len(e.arena)+n : len(e.arena)+n]
	e.arena = e.arena[:len(e.arena)+n]
	return s
}

func (e *Engine) emit(s *series, p *pipe, rec *win, provisional bool) {
	rec.revision++
	rec.dirty = false
	if !provisional {
		rec.fired = true
	}
	w := e.windowData(s, p, rec)
	base := e.counterBase(s, rec)
	res := Result{
		Pipeline:     p.spec.Name,
		Key:          e.key(s),
		Start:        w.start,
		End:          w.end,
		Revision:     rec.revision,
		Provisional:  provisional,
		Names:        p.names,
		Values:       e.alloc(len(p.funcs)),
		Count:        w.count,
		Coverage:     w.coverage(),
		WorstQuality: w.worst,
	}
	for i, f := range p.funcs {
		var resets int
		res.Values[i], resets = p.value(w, f, s.q, base)
		res.CounterResets += resets
		if f == Readings {
			res.Values[i] = float64(w.count)
			pts := w.sorted()
			rows := make([]Row, len(pts))
			vals := e.alloc(len(pts))
			for j, pt := range pts {
				vals[j] = pt.v
				rows[j] = Row{TimeNs: pt.t, Values: vals[j : j+1 : j+1]}
			}
			res.Rows = rows
		}
	}
	e.stats.Results++
	if provisional {
		e.stats.Provisional++
	} else {
		e.stats.CounterReset += uint64(res.CounterResets)
	}
	e.out.Results = append(e.out.Results, res)
}

// advance fires and purges the windows of one device-pipeline up to wm.
func (e *Engine) advance(dpi int32, wm int64) {
	dp := &e.dps[dpi]
	p := e.pipes[dp.pipe]
	if p.spec.Window.Kind == Session {
		e.advanceSessions(dpi, p, wm)
		return
	}
	e.fired = e.fired[:0]
	for _, si := range dp.series {
		s := &e.series[si]
		for _, w := range s.wins {
			if (!w.fired || w.pending) && w.end <= wm {
				if w.fired {
					e.stats.Refires++
				}
				w.pending = false
				e.emit(s, p, w, false)
				e.fired = append(e.fired, w.start)
			}
		}
	}
	// Derive before purging: a jump of the watermark can fire and expire a
	// window in one step, and its derived series still needs it.
	if len(p.derived) > 0 && len(e.fired) > 0 {
		slices.Sort(e.fired)
		for _, start := range slices.Compact(e.fired) {
			e.derive(dpi, start, false)
		}
	}
	next := int64(never)
	for _, si := range dp.series {
		s := &e.series[si]
		keep := s.wins[:0]
		for _, w := range s.wins {
			if w.fired && w.end+p.late <= wm {
				if s.cur == w {
					s.cur = nil
				}
				if s.carry {
					s.keepBase(w)
				}
				e.release(w)
				continue
			}
			keep = append(keep, w)
			if w.fired {
				next = min(next, w.end+p.late)
			} else {
				next = min(next, w.end)
			}
		}
		clear(s.wins[len(keep):])
		s.wins = keep
		if p.paned {
			// A pane is needed until the last window holding it (the one
			// starting with it) is past its lateness.
			cut := 0
			panes := s.panes()
			for cut < len(panes) && panes[cut].start+p.size+p.late <= wm {
				e.recycle(panes[cut])
				cut++
			}
			if cut > 0 {
				s.setPanes(slices.Delete(panes, 0, cut))
			}
		}
	}
	dp.nextEvent = next
	for k, dw := range dp.derived {
		if dw.end+p.late <= wm {
			delete(dp.derived, k)
		}
	}
}

// setDirtyOpen records that a device-pipeline has windows changed since
// their last emission, making it a candidate for provisional results.
func (e *Engine) setDirtyOpen(dpi int32) {
	if dp := &e.dps[dpi]; !dp.dirtyOpen {
		dp.dirtyOpen = true
		e.idleCand = append(e.idleCand, dpi)
	}
}

// Advance moves the processing-time clock to nowNs (it never goes back) and
// emits provisional results for open windows of devices silent for longer
// than their pipeline's idle timeout.
func (e *Engine) Advance(nowNs int64) {
	e.now = max(e.now, nowNs)
	// Scanning every device is O(devices): do it at most 16 times per
	// shortest idle timeout, so provisional results come within
	// idle_timeout·(1+1/16) of a device's last reading.
	if e.minIdle == 0 || e.now < e.nextIdleScan {
		return
	}
	e.nextIdleScan = e.now + max(e.minIdle/16, 1)
	// Only device-pipelines with windows changed since their last emission
	// are candidates: an idle fleet whose windows all fired costs nothing.
	cand := e.idleCand
	e.idleCand = e.idleSpare[:0]
	for _, dpi := range cand {
		dp := &e.dps[dpi]
		p := e.pipes[dp.pipe]
		if !dp.dirtyOpen {
			continue
		}
		if p.idle <= 0 || e.now-e.devs[dp.dev].lastSeen < p.idle {
			e.idleCand = append(e.idleCand, dpi)
			continue
		}
		if e.devs[dp.dev].unloaded && !e.load(dp.dev) {
			e.idleCand = append(e.idleCand, dpi)
			continue
		}
		dp.dirtyOpen = false
		e.markDirty(dp.dev)
		if p.spec.Window.Kind == Session {
			e.provisionalSessions(dpi, p)
			continue
		}
		e.fired = e.fired[:0]
		for _, si := range dp.series {
			s := &e.series[si]
			for _, w := range s.wins {
				if !w.fired && w.dirty {
					e.emit(s, p, w, true)
					e.fired = append(e.fired, w.start)
				}
			}
		}
		if len(p.derived) > 0 {
			slices.Sort(e.fired)
			for _, start := range slices.Compact(e.fired) {
				e.derive(dpi, start, true)
			}
		}
	}
	e.idleSpare = cand[:0]
}

// derive recomputes the derived series of a device-pipeline for the window
// starting at start.
func (e *Engine) derive(dpi int32, start int64, provisional bool) {
	dp := &e.dps[dpi]
	p := e.pipes[dp.pipe]
	if len(p.derived) == 0 {
		return
	}
	var end int64
	cov := 1.0
	var worst wire.TimeQuality
	anyWorst := false
	lookup := func(channel, agg string) (float64, bool) {
		ai := slices.Index(p.names, agg)
		if ai < 0 {
			return 0, false
		}
		// Several series may share the channel (power and an energy
		// counter): among those with a result for this window, the lowest
		// quantity number is the one meant.
		var s *series
		var w *win
		for _, si := range dp.series {
			c := &e.series[si]
			if c.channel != channel || s != nil && c.q >= s.q {
				continue
			}
			i, found := slices.BinarySearchFunc(c.wins, start, func(w *win, st int64) int { return cmp.Compare(w.start, st) })
			if !found || !provisional && !c.wins[i].fired {
				continue
			}
			s, w = c, c.wins[i]
		}
		if s != nil {
			w = e.windowData(s, p, w)
			end = w.end
			cov = min(cov, w.coverage())
			if !anyWorst || w.worst.Worse(worst) {
				worst, anyWorst = w.worst, true
			}
			v, _ := p.value(w, p.funcs[ai], s.q, e.counterBase(s, w))
			return v, true
		}
		return 0, false
	}
	if dp.derived == nil {
		dp.derived = map[derivedKey]*derivedWin{}
	}
	for i, x := range p.derived {
		cov, anyWorst = 1, false
		v, ok := x.Eval(lookup)
		if !ok {
			continue
		}
		k := derivedKey{i, start}
		dw := dp.derived[k]
		if dw == nil {
			dw = &derivedWin{end: end}
			dp.derived[k] = dw
		}
		dw.revision++
		vals := e.alloc(1)
		vals[0] = v
		e.stats.Results++
		if provisional {
			e.stats.Provisional++
		}
		e.out.Results = append(e.out.Results, Result{
			Pipeline:     p.spec.Name,
			Key:          Key{Device: e.devs[dp.dev].name, Channel: p.spec.Derived[i].Name},
			Start:        start,
			End:          end,
			Revision:     dw.revision,
			Provisional:  provisional,
			Names:        p.dnames[i],
			Values:       vals,
			Coverage:     cov,
			WorstQuality: worst,
		})
	}
}

// flush emits the coalesced re-fires.
func (e *Engine) flush() {
	type dpStart struct {
		dp    int32
		start int64
	}
	var derive []dpStart
	for _, pr := range e.pending {
		w := pr.w
		if !w.pending {
			continue // emitted when the watermark expired it
		}
		w.pending = false
		s := &e.series[pr.series]
		e.markDirty(s.dev)
		p := e.pipes[s.pipe]
		if w.fired {
			e.stats.Refires++
		}
		e.emit(s, p, w, false)
		if len(p.derived) > 0 {
			derive = append(derive, dpStart{s.dp, w.start})
		}
	}
	clear(e.pending)
	e.pending = e.pending[:0]
	slices.SortFunc(derive, func(a, b dpStart) int { return cmp.Or(cmp.Compare(a.dp, b.dp), cmp.Compare(a.start, b.start)) })
	for _, d := range slices.Compact(derive) {
		e.derive(d.dp, d.start, false)
	}
	for _, si := range e.pendingSess {
		s := &e.series[si]
		if s.sess == nil || !s.sess.pending {
			continue
		}
		s.sess.pending = false
		e.markDirty(s.dev)
		p := e.pipes[s.pipe]
		dp := &e.dps[s.dp]
		wm := p.watermark(e.devs[s.dev].has, e.devs[s.dev].maxT)
		dp.nextEvent = min(dp.nextEvent, e.fireSessions(s, p, wm))
	}
	e.pendingSess = e.pendingSess[:0]
}

// TakeOutput emits the re-fires coalesced since the last call, then returns
// everything emitted and hands its ownership to the caller.
func (e *Engine) TakeOutput() Output {
	e.flush()
	out := e.out
	e.out = Output{Results: e.spare.Results, Late: e.spare.Late}
	e.spare = Output{}
	e.arena = nil
	return out
}

// Recycle gives back an Output from TakeOutput that the caller no longer
// uses (nothing in it may be referenced afterwards), so the engine can
// reuse its slices instead of allocating. Slices longer than MaxRecycled
// are let go: a burst's output does not stay allocated once it is over.
func (e *Engine) Recycle(o Output) {
	o = TrimOutput(o)
	clear(o.Results)
	clear(o.Late)
	e.spare = Output{Results: o.Results[:0], Late: o.Late[:0]}
}

// MaxRecycled is the most results (and late readings) whose room Recycle
// and TrimOutput keep.
const MaxRecycled = 4096

// TrimOutput drops o's slices that have room for more than MaxRecycled
// entries (nil instead), for a caller that keeps an Output to append to.
func TrimOutput(o Output) Output {
	if cap(o.Results) > MaxRecycled {
		o.Results = nil
	}
	if cap(o.Late) > MaxRecycled {
		o.Late = nil
	}
	return o
}
