package window

import (
	"cmp"
	"hash/fnv"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/gridedge/gridedge/shared/wire"
)

const joinBucket = int64(time.Second)

// sessionState holds a session series: its buffered points (all columns for
// a joined series) and the sessions emitted so far, by start.
type sessionState struct {
	pts      []jpoint
	unsorted bool
	pending  bool // queued in Engine.pendingSess
	emitted  map[int64]*sessEmit
}

type jpoint struct {
	point
	q   wire.TimeQuality
	col int8
}

type sessEmit struct {
	end         int64
	revision    uint32
	sig         uint64
	provisional bool
}

// session is one computed session: rows in time order.
type session struct {
	start, end int64
	rows       []Row
	worst      wire.TimeQuality
}

func joinName(cols []string) string { return strings.Join(cols, "+") }

// rowTime is the time a reading contributes a row at: its second for a
// joined series, itself otherwise.
func (p *pipe) rowTime(t int64) int64 {
	if p.joinCols > 0 {
		return floorDiv(t, joinBucket) * joinBucket
	}
	return t
}

func (e *Engine) addSession(si int32, p *pipe, col int8, r *Reading, wm int64) {
	s := &e.series[si]
	rt := p.rowTime(r.TimeNs)
	gap := int64(p.spec.Window.Gap)
	if wm != noTime && rt+gap+p.late <= wm {
		e.stats.Late++
		e.out.Late = append(e.out.Late, LateReading{Pipeline: p.spec.Name, Reading: *r, Windows: []Span{{rt, rt + gap}}})
		return
	}
	if s.sess == nil {
		s.sess = &sessionState{emitted: map[int64]*sessEmit{}}
	}
	ss := s.sess
	jp := jpoint{point: point{t: r.TimeNs, v: r.Value, epoch: r.SeqEpoch, seq: r.Seq}, q: r.Quality, col: max(col, 0)}
	if n := len(ss.pts); n > 0 && cmpJ(jp, ss.pts[n-1]) < 0 {
		ss.unsorted = true
	}
	ss.pts = append(ss.pts, jp)
	e.setDirtyOpen(s.dp)
	dp := &e.dps[s.dp]
	dp.nextEvent = min(dp.nextEvent, rt+gap)
	if ss.pending {
		return
	}
	// Late but within lateness, its session may already have fired; or it
	// may reopen a fired session. Either way, look again at TakeOutput.
	touches := wm != noTime && rt+gap <= wm
	for start, em := range ss.emitted {
		touches = touches || !em.provisional && rt > start-gap && rt < em.end
	}
	if touches {
		ss.pending = true
		e.pendingSess = append(e.pendingSess, si)
	}
}

func cmpJ(a, b jpoint) int {
	if c := cmpPoint(a.point, b.point); c != 0 {
		return c
	}
	return cmp.Compare(a.col, b.col)
}

func (e *Engine) advanceSessions(dpi int32, p *pipe, wm int64) {
	dp := &e.dps[dpi]
	next := int64(never)
	for _, si := range dp.series {
		next = min(next, e.fireSessions(&e.series[si], p, wm))
	}
	dp.nextEvent = next
}

// fireSessions emits closed sessions of s that are new or changed, retracts
// emitted sessions that merged away, drops state no accepted reading can
// reach any more, and returns the next watermark at which s needs a look.
func (e *Engine) fireSessions(s *series, p *pipe, wm int64) int64 {
	ss := s.sess
	if ss == nil {
		return never
	}
	gap := int64(p.spec.Window.Gap)
	sessions := ss.compute(p)
	next := int64(never)
	live := make(map[int64]bool, len(sessions))
	for i := range sessions {
		x := &sessions[i]
		if x.end > wm {
			next = min(next, x.end)
			em := ss.emitted[x.start]
			if em == nil {
				continue
			}
			live[x.start] = true
			if sig := x.signature(); !em.provisional && (em.sig != sig || em.end != x.end) {
				// A fired session grew past the watermark: it is open again,
				// so its current state is provisional until it closes.
				em.end, em.sig, em.provisional = x.end, sig, true
				em.revision++
				e.emitSession(s, p, x, em.revision, true)
			}
			continue
		}
		if x.rows[len(x.rows)-1].TimeNs-x.start < int64(p.spec.Window.MinDuration) {
			continue
		}
		live[x.start] = true
		em := ss.emitted[x.start]
		sig := x.signature()
		if em != nil && !em.provisional && em.sig == sig && em.end == x.end {
			next = min(next, x.end+gap+p.late)
			continue
		}
		if em == nil {
			em = &sessEmit{}
			ss.emitted[x.start] = em
		} else if !em.provisional {
			e.stats.Refires++
		}
		em.end, em.sig, em.provisional = x.end, sig, false
		em.revision++
		e.emitSession(s, p, x, em.revision, false)
		next = min(next, x.end+gap+p.late)
	}
	for start, em := range ss.emitted {
		if !live[start] {
			em.revision++
			e.stats.Results++
			e.out.Results = append(e.out.Results, Result{
				Pipeline: p.spec.Name, Key: e.key(s), Start: start, End: em.end,
				Revision: em.revision, Retracted: true, Names: p.names,
			})
			delete(ss.emitted, start)
		}
	}
	// Drop what no accepted reading can reach: sessions closed for longer
	// than gap+lateness, and lone points as old.
	frontier := wm - gap - p.late + 1
	for i := range sessions {
		x := &sessions[i]
		if x.end+gap+p.late > wm {
			frontier = min(frontier, x.start)
			break
		}
	}
	cut := 0
	for cut < len(ss.pts) && p.rowTime(ss.pts[cut].t) < frontier {
		cut++
	}
	if cut > 0 {
		ss.pts = slices.Delete(ss.pts, 0, cut)
		for start, em := range ss.emitted {
			if start < frontier && em.end+gap+p.late <= wm {
				delete(ss.emitted, start)
			}
		}
	}
	return next
}

func (e *Engine) provisionalSessions(dpi int32, p *pipe) {
	for _, si := range e.dps[dpi].series {
		s := &e.series[si]
		if s.sess == nil {
			continue
		}
		wm := p.watermark(e.devs[s.dev].has, e.devs[s.dev].maxT)
		sessions := s.sess.compute(p)
		for i := range sessions {
			x := &sessions[i]
			if x.end <= wm || x.rows[len(x.rows)-1].TimeNs-x.start < int64(p.spec.Window.MinDuration) {
				continue
			}
			em := s.sess.emitted[x.start]
			sig := x.signature()
			if em != nil && em.sig == sig && em.end == x.end {
				continue
			}
			if em == nil {
				em = &sessEmit{}
				s.sess.emitted[x.start] = em
			}
			em.end, em.sig, em.provisional = x.end, sig, true
			em.revision++
			e.emitSession(s, p, x, em.revision, true)
		}
	}
}

// compute splits the buffered points into rows and rows into sessions.
func (ss *sessionState) compute(p *pipe) []session {
	if ss.unsorted {
		slices.SortFunc(ss.pts, cmpJ)
		ss.unsorted = false
	}
	rows := sessionRows(p, ss.pts)
	gap := int64(p.spec.Window.Gap)
	maxDur := int64(p.spec.Window.MaxDuration)
	var out []session
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && rows[j].TimeNs-rows[j-1].TimeNs < gap && (maxDur == 0 || rows[j].TimeNs-rows[i].TimeNs < maxDur) {
			j++
		}
		out = append(out, session{start: rows[i].TimeNs, end: rows[j-1].TimeNs + gap, rows: rows[i:j:j]})
		i = j
	}
	// Time quality counts every reading behind a session's span, including
	// ones a joined row overwrote or that made no complete row.
	k := 0
	for i := range out {
		x := &out[i]
		x.worst = wire.TimeQuality_TIME_QUALITY_SYNCED
		last := x.rows[len(x.rows)-1].TimeNs
		for k < len(ss.pts) && p.rowTime(ss.pts[k].t) < x.start {
			k++
		}
		for ; k < len(ss.pts) && p.rowTime(ss.pts[k].t) <= last; k++ {
			if q := ss.pts[k].q; q.Worse(x.worst) {
				x.worst = q
			}
		}
	}
	return out
}

// sessionRows turns sorted points into rows: each point alone, or for a
// joined series one row per second holding every column's last value in
// that second (seconds missing a column make no row).
func sessionRows(p *pipe, pts []jpoint) []Row {
	if p.joinCols == 0 {
		rows := make([]Row, len(pts))
		vals := make([]float64, len(pts))
		for i, pt := range pts {
			vals[i] = pt.v
			rows[i] = Row{TimeNs: pt.t, Values: vals[i : i+1 : i+1]}
		}
		return rows
	}
	var rows []Row
	for i := 0; i < len(pts); {
		sec := p.rowTime(pts[i].t)
		vals := make([]float64, p.joinCols)
		seen := 0
		var have uint64
		for ; i < len(pts) && p.rowTime(pts[i].t) == sec; i++ {
			c := pts[i].col
			vals[c] = pts[i].v // sorted by time: the last write is the latest
			if have&(1<<c) == 0 {
				have |= 1 << c
				seen++
			}
		}
		if seen == p.joinCols && p.rowActive(vals) {
			rows = append(rows, Row{TimeNs: sec, Values: vals})
		}
	}
	return rows
}

// rowActive reports whether a complete joined row counts: some active
// column is non-zero, or no column is active.
func (p *pipe) rowActive(vals []float64) bool {
	if p.activeMask == 0 {
		return true
	}
	for i, v := range vals {
		if p.activeMask&(1<<i) != 0 && v != 0 {
			return true
		}
	}
	return false
}

// stateShare counts, for a joined session dated [start, last], the
// readings of the state columns and how many of them were merged into the
// per-second join (the last of their column in a second where every
// column has a reading). pts is sorted.
func (p *pipe) stateShare(pts []jpoint, start, last int64) (readings, merged int) {
	i, _ := slices.BinarySearchFunc(pts, start, func(pt jpoint, t int64) int { return cmp.Compare(p.rowTime(pt.t), t) })
	for i < len(pts) && p.rowTime(pts[i].t) <= last {
		sec := p.rowTime(pts[i].t)
		var have uint64
		n := 0
		for ; i < len(pts) && p.rowTime(pts[i].t) == sec; i++ {
			c := pts[i].col
			have |= 1 << c
			if p.stateMask&(1<<c) != 0 {
				n++
			}
		}
		readings += n
		if have == 1<<p.joinCols-1 {
			merged += bits.OnesCount64(have & p.stateMask)
		}
	}
	return readings, merged
}

func (x *session) signature() uint64 {
	h := fnv.New64a()
	var b [8]byte
	put := func(u uint64) {
		for i := range b {
			b[i] = byte(u >> (8 * i))
		}
		h.Write(b[:])
	}
	put(uint64(x.worst))
	for _, r := range x.rows {
		put(uint64(r.TimeNs))
		for _, v := range r.Values {
			put(math.Float64bits(v))
		}
	}
	return h.Sum64()
}

func (e *Engine) emitSession(s *series, p *pipe, x *session, rev uint32, provisional bool) {
	w := &win{}
	w.init(p, Span{x.start, x.end}, s.needBins)
	for _, r := range x.rows {
		w.add(p, &Reading{TimeNs: r.TimeNs, Value: r.Values[0], Quality: wire.TimeQuality_TIME_QUALITY_SYNCED}, s.needPts)
	}
	w.worst = x.worst
	res := Result{
		Pipeline: p.spec.Name, Key: e.key(s), Start: x.start, End: x.end,
		Revision: rev, Provisional: provisional, Names: p.names,
		Values: make([]float64, len(p.funcs)), Count: int64(len(x.rows)),
		Coverage: w.coverage(), WorstQuality: w.worst, Rows: x.rows,
	}
	stateN, mergedN := -1, 0
	for i, f := range p.funcs {
		switch f {
		case Readings:
			res.Values[i] = float64(len(x.rows))
			continue
		case StateReadings, StateMerged:
			if stateN < 0 {
				stateN, mergedN = p.stateShare(s.sess.pts, x.start, x.rows[len(x.rows)-1].TimeNs)
			}
			res.Values[i] = float64(stateN)
			if f == StateMerged {
				res.Values[i] = float64(mergedN)
			}
			continue
		}
		var resets int
		res.Values[i], resets = p.value(w, f, s.q, nil)
		res.CounterResets += resets
	}
	e.stats.Results++
	if provisional {
		e.stats.Provisional++
	}
	e.out.Results = append(e.out.Results, res)
}
