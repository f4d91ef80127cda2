package window

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"
	"slices"

	"github.com/gridedge/gridedge/shared/wire"
)

// checkpointVersion changes whenever the encoding below does.
const checkpointVersion = 2

// ErrCheckpoint is wrapped by Restore errors: the bytes are not a checkpoint
// of this engine version and configuration.
var ErrCheckpoint = errors.New("window checkpoint unusable")

type ckState struct {
	Version     int
	Fingerprint [32]byte
	Now         int64
	IdleScan    int64
	Applied     uint64
	Stats       Stats
	Devices     []ckDevice
	Routes      []ckRoute
	Series      []ckSeries
	DevPipes    []ckDevPipe
}

type ckDevice struct {
	Name     string
	Has      bool
	MaxT     int64
	LastSeen int64
	Zone     string
}

type ckRoute struct {
	Device, Channel string
	Quantity        int32
}

type ckSeries struct {
	Wins    []ckWin
	Panes   []ckWin
	Cur     int
	Pts     []ckPoint // session points
	Cols    []int8
	Emitted []ckSessEmit
	HasSess bool
}

type ckWin struct {
	Start, End         int64
	Revision           uint32
	Fired, Dirty       bool
	Count              int64
	Sum, Shift, S1, S2 float64
	Min, Max           float64
	First, Last        ckPoint
	Worst              int32
	NSlots             int32
	Slots              []uint64
	Pts                []ckPoint
	Bins               []ckBin
}

type ckBin struct {
	Sum    float64
	N      int64
	FirstT int64
	Last   ckPoint
}

type ckPoint struct {
	T          int64
	V          float64
	Epoch, Seq uint64
	Q          int32
}

type ckSessEmit struct {
	Start, End  int64
	Revision    uint32
	Sig         uint64
	Provisional bool
}

type ckDevPipe struct {
	NextEvent int64
	DirtyOpen bool
	Derived   []ckDerived
}

type ckDerived struct {
	Idx        int
	Start, End int64
	Revision   uint32
}

func fingerprint(pipes []*pipe) [32]byte {
	specs := make([]Pipeline, len(pipes))
	for i, p := range pipes {
		specs[i] = p.spec
	}
	return sha256.Sum256(fmt.Appendf(nil, "%#v", specs))
}

func toCkWin(w *win) ckWin {
	w.sorted()
	cw := ckWin{
		Start: w.start, End: w.end, Revision: w.revision, Fired: w.fired, Dirty: w.dirty,
		Count: w.count, Sum: w.sum, Shift: w.shift, S1: w.s1, S2: w.s2, Min: w.min, Max: w.max,
		First: toCk(w.first), Last: toCk(w.last), Worst: int32(w.worst), NSlots: w.nslots,
		Slots: w.slots,
	}
	for _, pt := range w.pts {
		cw.Pts = append(cw.Pts, toCk(pt))
	}
	for _, b := range w.bins {
		cw.Bins = append(cw.Bins, ckBin{Sum: b.sum, N: b.n, FirstT: b.firstT, Last: toCk(b.last)})
	}
	return cw
}

func fromCkWin(cw ckWin) *win {
	w := &win{
		start: cw.Start, end: cw.End, revision: cw.Revision, fired: cw.Fired, dirty: cw.Dirty,
		count: cw.Count, sum: cw.Sum, shift: cw.Shift, s1: cw.S1, s2: cw.S2, min: cw.Min, max: cw.Max,
		first: fromCk(cw.First), last: fromCk(cw.Last), worst: wire.TimeQuality(cw.Worst),
		nslots: cw.NSlots, slots: cw.Slots,
	}
	for _, pt := range cw.Pts {
		w.pts = append(w.pts, fromCk(pt))
	}
	for _, b := range cw.Bins {
		w.bins = append(w.bins, bin{sum: b.Sum, n: b.N, firstT: b.FirstT, last: fromCk(b.Last)})
	}
	return w
}

func toCk(p point) ckPoint {
	return ckPoint{T: p.t, V: p.v, Epoch: p.epoch, Seq: p.seq, Q: int32(p.q)}
}

func fromCk(c ckPoint) point {
	return point{t: c.T, v: c.V, epoch: c.Epoch, seq: c.Seq, q: wire.TimeQuality(c.Q)}
}

// Checkpoint serialises the whole engine state, including AppliedThrough and
// the processing-time clock. Call it between Apply calls, after TakeOutput:
// output not yet taken is not part of the checkpoint.
func (e *Engine) Checkpoint() ([]byte, error) {
	if len(e.out.Results) > 0 || len(e.out.Late) > 0 || len(e.pending) > 0 || len(e.pendingSess) > 0 {
		return nil, errors.New("window checkpoint: output not taken (call TakeOutput first)")
	}
	st := ckState{
		Version: checkpointVersion, Fingerprint: fingerprint(e.pipes),
		Now: e.now, IdleScan: e.nextIdleScan, Applied: e.applied, Stats: e.stats,
	}
	for _, d := range e.devs {
		st.Devices = append(st.Devices, ckDevice{Name: d.name, Has: d.has, MaxT: d.maxT, LastSeen: d.lastSeen, Zone: d.zone})
	}
	for _, rt := range e.routeTab {
		st.Routes = append(st.Routes, ckRoute{Device: rt.key.device, Channel: rt.key.channel, Quantity: int32(rt.key.q)})
	}
	for i := range e.series {
		s := &e.series[i]
		cs := ckSeries{Cur: -1}
		for _, w := range s.panes {
			cs.Panes = append(cs.Panes, toCkWin(w))
		}
		for j, w := range s.wins {
			if w == s.cur {
				cs.Cur = j
			}
			cs.Wins = append(cs.Wins, toCkWin(w))
		}
		if ss := s.sess; ss != nil {
			cs.HasSess = true
			if ss.unsorted {
				slices.SortFunc(ss.pts, cmpJ)
				ss.unsorted = false
			}
			for _, pt := range ss.pts {
				cs.Pts = append(cs.Pts, toCk(pt.point))
				cs.Cols = append(cs.Cols, pt.col)
			}
			for start, em := range ss.emitted {
				cs.Emitted = append(cs.Emitted, ckSessEmit{Start: start, End: em.end, Revision: em.revision, Sig: em.sig, Provisional: em.provisional})
			}
			slices.SortFunc(cs.Emitted, func(a, b ckSessEmit) int { return cmp.Compare(a.Start, b.Start) })
		}
		st.Series = append(st.Series, cs)
	}
	for _, dp := range e.dps {
		cd := ckDevPipe{NextEvent: dp.nextEvent, DirtyOpen: dp.dirtyOpen}
		for k, dw := range dp.derived {
			cd.Derived = append(cd.Derived, ckDerived{Idx: k.idx, Start: k.start, End: dw.end, Revision: dw.revision})
		}
		st.DevPipes = append(st.DevPipes, cd)
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&st); err != nil {
		return nil, fmt.Errorf("window checkpoint: %w", err)
	}
	return buf.Bytes(), nil
}

// Restore builds an engine from pipelines and a checkpoint taken by an
// engine with the same pipelines. Applying the readings after
// AppliedThrough() then gives exactly the results the checkpointed engine
// would have given.
func Restore(pipelines []Pipeline, data []byte, opts ...Option) (*Engine, error) {
	e, err := New(pipelines, opts...)
	if err != nil {
		return nil, err
	}
	var st ckState
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&st); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	if st.Version != checkpointVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrCheckpoint, st.Version, checkpointVersion)
	}
	if st.Fingerprint != fingerprint(e.pipes) {
		return nil, fmt.Errorf("%w: taken with a different pipeline configuration", ErrCheckpoint)
	}
	e.now, e.nextIdleScan, e.applied, e.stats = st.Now, st.IdleScan, st.Applied, st.Stats
	for _, cd := range st.Devices {
		di := e.deviceIndex(cd.Name)
		d := &e.devs[di]
		d.has, d.maxT, d.lastSeen = cd.Has, cd.MaxT, cd.LastSeen
		if cd.Zone != "" {
			loc, err := e.location(cd.Zone)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrCheckpoint, err)
			}
			d.zone, d.loc = cd.Zone, loc
		}
	}
	// Recreating routes in their original order recreates series and
	// device-pipelines at the same indices.
	for _, r := range st.Routes {
		e.newRoute(routeKey{r.Device, r.Channel, wire.Quantity(r.Quantity)})
	}
	if len(e.series) != len(st.Series) || len(e.dps) != len(st.DevPipes) || len(e.devs) != len(st.Devices) {
		return nil, fmt.Errorf("%w: state does not match its routes", ErrCheckpoint)
	}
	for i, cs := range st.Series {
		s := &e.series[i]
		for _, cw := range cs.Panes {
			s.panes = append(s.panes, fromCkWin(cw))
		}
		for j, cw := range cs.Wins {
			w := fromCkWin(cw)
			s.wins = append(s.wins, w)
			if j == cs.Cur {
				s.cur = w
			}
		}
		if cs.HasSess {
			ss := &sessionState{emitted: map[int64]*sessEmit{}}
			for j, pt := range cs.Pts {
				ss.pts = append(ss.pts, jpoint{point: fromCk(pt), col: cs.Cols[j]})
			}
			for _, em := range cs.Emitted {
				ss.emitted[em.Start] = &sessEmit{end: em.End, revision: em.Revision, sig: em.Sig, provisional: em.Provisional}
			}
			s.sess = ss
		}
	}
	for i, cd := range st.DevPipes {
		dp := &e.dps[i]
		dp.nextEvent, dp.dirtyOpen = cd.NextEvent, cd.DirtyOpen
		for _, d := range cd.Derived {
			if dp.derived == nil {
				dp.derived = map[derivedKey]*derivedWin{}
			}
			dp.derived[derivedKey{d.Idx, d.Start}] = &derivedWin{end: d.End, revision: d.Revision}
		}
	}
	e.log.Info("window: state restored", "devices", len(e.devs), "series", len(e.series),
		"open_windows", e.stats.OpenWindows, "applied_through", e.applied)
	return e, nil
}
