package window

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gridedge/gridedge/shared/wire"
)

// checkpointVersion changes whenever the encoding below does. Version 4
// stores only the bins of slots holding readings and marks each device's
// state with its version, so a store holding states of both versions (the
// devices not written since an upgrade keep theirs) restores. Version 3,
// written by the previous release, is still read. A version 4 state ends
// with the counter bases of its series (carry.go); a version 3 state may
// end with them or not (they came within version 3).
const (
	checkpointVersion = 4
	oldestVersion     = 3
)

// ErrCheckpoint is wrapped by Restore errors: the bytes are not a checkpoint
// of this engine version and configuration.
var ErrCheckpoint = errors.New("window checkpoint unusable")

// DeviceState is the serialised state of one device: its routes, windows,
// sessions and derived-series revisions in every pipeline.
type DeviceState struct {
	Device string
	State  []byte
}

// Delta is what changed in the engine since the previous TakeDelta: the
// engine-wide header (clocks, counters, applied offset) and the state of
// every device that changed. A zero Delta means nothing changed. Storing
// the header and each device's latest state (replacing older ones) keeps a
// complete checkpoint that RestoreDelta reads back.
type Delta struct {
	Header  []byte
	Devices []DeviceState
}

// Empty reports whether nothing changed.
func (d Delta) Empty() bool { return d.Header == nil && len(d.Devices) == 0 }

// fingerprint identifies a pipeline configuration. Fields added to
// Pipeline later (ActiveAny, Requires, Window.MaxDuration) are left out
// when unset, so the state of an unchanged configuration still restores.
func fingerprint(pipes []*pipe) [32]byte {
	specs := make([]Pipeline, len(pipes))
	for i, p := range pipes {
		specs[i] = p.spec
	}
	b := fmt.Appendf(nil, "%#v", specs)
	for _, unset := range []string{", MaxDuration:0", ", ActiveAny:[]string(nil)", ", Requires:[]window.Selector(nil)"} {
		b = bytes.ReplaceAll(b, []byte(unset), nil)
	}
	return sha256.Sum256(b)
}

// markDirty records that device di's state changed since the last delta.
func (e *Engine) markDirty(di int32) {
	if d := &e.devs[di]; !d.ckDirty {
		d.ckDirty = true
		e.dirtyDevs = append(e.dirtyDevs, di)
	}
}

func (e *Engine) outputTaken() error {
	if len(e.out.Results) > 0 || len(e.out.Late) > 0 || len(e.pending) > 0 || len(e.pendingSess) > 0 {
		return errors.New("window checkpoint: output not taken (call TakeOutput first)")
	}
	return nil
}

// TakeDelta returns the state changed since the previous call (or since the
// engine was created or restored) and starts a new delta. Call it between
// Apply calls, after TakeOutput. An engine that only had Advance called
// without any window changing returns an empty Delta: an idle engine has
// nothing to write.
func (e *Engine) TakeDelta() (Delta, error) {
	if e.loadErr != nil {
		return Delta{}, e.loadErr
	}
	if err := e.outputTaken(); err != nil {
		return Delta{}, err
	}
	if len(e.dirtyDevs) == 0 {
		return Delta{}, nil
	}
	d := Delta{Header: e.header()}
	slices.Sort(e.dirtyDevs)
	for _, di := range e.dirtyDevs {
		e.devs[di].ckDirty = false
		d.Devices = append(d.Devices, DeviceState{Device: e.devs[di].name, State: e.deviceState(di)})
	}
	e.dirtyDevs = e.dirtyDevs[:0]
	return d, nil
}

// Checkpoint serialises the whole engine state, including AppliedThrough and
// the processing-time clock. Call it between Apply calls, after TakeOutput:
// output not yet taken is not part of the checkpoint.
func (e *Engine) Checkpoint() ([]byte, error) {
	if err := e.outputTaken(); err != nil {
		return nil, err
	}
	for di := range e.devs {
		if e.devs[di].unloaded {
			e.load(int32(di))
		}
	}
	if e.loadErr != nil {
		return nil, e.loadErr
	}
	w := enc{b: e.header()}
	w.u(uint64(len(e.devs)))
	for di := range e.devs {
		st := e.deviceState(int32(di))
		w.u(uint64(len(st)))
		w.b = append(w.b, st...)
	}
	return w.b, nil
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
	r := dec{b: data}
	if err := e.readHeader(&r); err != nil {
		return nil, err
	}
	n := r.n(1)
	for range n {
		l := r.n(1)
		if r.err != nil {
			break
		}
		st := r.b[:l]
		r.b = r.b[l:]
		if _, err := e.restoreDevice(st, ""); err != nil {
			return nil, err
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCheckpoint, len(r.b))
	}
	e.restored()
	return e, nil
}

// RestoreDelta builds an engine from the latest header and the latest state
// of every device, as stored from a sequence of Deltas.
func RestoreDelta(pipelines []Pipeline, header []byte, devices [][]byte, opts ...Option) (*Engine, error) {
	e, err := New(pipelines, opts...)
	if err != nil {
		return nil, err
	}
	r := dec{b: header}
	if err := e.readHeader(&r); err != nil {
		return nil, err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: header has %d trailing bytes", ErrCheckpoint, len(r.b))
	}
	for _, st := range devices {
		di, err := e.restoreDevice(st, "")
		if err != nil {
			return nil, err
		}
		if e.loader != nil && len(e.devs[di].routes) > 0 {
			e.unload(di)
		}
	}
	e.restored()
	return e, nil
}

func (e *Engine) restored() {
	e.log.Info("window: state restored", "devices", len(e.devs), "series", len(e.series),
		"open_windows", e.stats.OpenWindows, "applied_through", e.applied)
}

func (e *Engine) header() []byte {
	w := enc{}
	w.u(checkpointVersion)
	fp := fingerprint(e.pipes)
	w.b = append(w.b, fp[:]...)
	w.i(e.now)
	w.i(e.nextIdleScan)
	w.u(e.applied)
	s := e.stats
	for _, v := range []uint64{s.Readings, s.Unrouted, s.Rejected, s.Late, s.Results, s.Provisional, s.Refires, uint64(s.OpenWindows), s.CounterReset} {
		w.u(v)
	}
	return w.b
}

func (e *Engine) readHeader(r *dec) error {
	if v := r.u(); r.err == nil && (v < oldestVersion || v > checkpointVersion) {
		return fmt.Errorf("%w: version %d, want %d to %d", ErrCheckpoint, v, oldestVersion, checkpointVersion)
	}
	if r.err != nil || len(r.b) < 32 {
		return fmt.Errorf("%w: no header", ErrCheckpoint)
	}
	if fp := fingerprint(e.pipes); string(r.b[:32]) != string(fp[:]) {
		return fmt.Errorf("%w: taken with a different pipeline configuration", ErrCheckpoint)
	}
	r.b = r.b[32:]
	e.now, e.nextIdleScan, e.applied = r.i(), r.i(), r.u()
	s := &e.stats
	s.Readings, s.Unrouted, s.Rejected, s.Late, s.Results = r.u(), r.u(), r.u(), r.u(), r.u()
	s.Provisional, s.Refires, s.OpenWindows, s.CounterReset = r.u(), r.u(), int(r.u()), r.u()
	return r.err
}

// deviceState encodes one device. Its routes are listed in creation order:
// re-creating them recreates the device's pipelines and series in the same
// order, so series and device-pipelines are listed in that order too. It
// starts with a zero byte and the version (a version 3 state starts with
// the name's length, never zero).
func (e *Engine) deviceState(di int32) []byte {
	d := &e.devs[di]
	w := enc{b: []byte{0}}
	w.u(checkpointVersion)
	w.s(d.name)
	w.t(d.has)
	w.i(d.maxT)
	w.i(d.lastSeen)
	w.s(d.zone)
	w.u(uint64(len(d.routes)))
	for _, rt := range d.routes {
		w.s(rt.channel)
		w.u(uint64(rt.q))
	}
	w.u(uint64(len(d.dps)))
	for _, dpi := range d.dps {
		dp := &e.dps[dpi]
		w.i(dp.nextEvent)
		w.t(dp.dirtyOpen)
		keys := make([]derivedKey, 0, len(dp.derived))
		for k := range dp.derived {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b derivedKey) int { return cmp.Or(cmp.Compare(a.idx, b.idx), cmp.Compare(a.start, b.start)) })
		w.u(uint64(len(keys)))
		for _, k := range keys {
			dw := dp.derived[k]
			w.u(uint64(k.idx))
			w.i(k.start)
			w.i(dw.end)
			w.u(uint64(dw.revision))
		}
		w.u(uint64(len(dp.series)))
		for _, si := range dp.series {
			writeSeries(&w, &e.series[si])
		}
	}
	e.writeBases(&w, d)
	return w.b
}

func writeSeries(w *enc, s *series) {
	cur := -1
	w.u(uint64(len(s.wins)))
	for j, x := range s.wins {
		if x == s.cur {
			cur = j
		}
		writeWin(w, x)
	}
	w.i(int64(cur))
	w.u(uint64(len(s.panes())))
	for _, x := range s.panes() {
		writeWin(w, x)
	}
	ss := s.sess
	w.t(ss != nil)
	if ss == nil {
		return
	}
	if ss.unsorted {
		slices.SortFunc(ss.pts, cmpJ)
		ss.unsorted = false
	}
	w.u(uint64(len(ss.pts)))
	for _, pt := range ss.pts {
		writePoint(w, pt.point)
		w.u(uint64(pt.q))
		w.i(int64(pt.col))
	}
	starts := make([]int64, 0, len(ss.emitted))
	for start := range ss.emitted {
		starts = append(starts, start)
	}
	slices.Sort(starts)
	w.u(uint64(len(starts)))
	for _, start := range starts {
		em := ss.emitted[start]
		w.i(start)
		w.i(em.end)
		w.u(uint64(em.revision))
		w.u(em.sig)
		w.t(em.provisional)
	}
}

func writeWin(w *enc, x *win) {
	x.sorted()
	w.i(x.start)
	w.i(x.end)
	w.u(uint64(x.revision))
	w.t(x.fired)
	w.t(x.dirty)
	w.i(x.count)
	for _, f := range []float64{x.sum, x.shift, x.s1, x.s2, x.min, x.max} {
		w.f(f)
	}
	writePoint(w, x.first)
	writePoint(w, x.last)
	w.u(uint64(x.worst))
	w.i(int64(x.nslots))
	w.u(uint64(len(x.slots)))
	for _, v := range x.slots {
		w.u(v)
	}
	w.u(uint64(len(x.pts)))
	for _, pt := range x.pts {
		writePoint(w, pt)
	}
	w.t(x.binned)
	w.u(uint64(len(x.bins)))
	for i := range x.bins {
		b := &x.bins[i]
		w.u(b.slot())
		w.u(b.n())
		w.f(b.sum)
		w.i(b.firstT - x.start)
		w.i(b.lastT - b.firstT)
		w.f(b.lastV)
		w.u(b.lastEpoch)
		w.u(b.lastSeq)
	}
}

func writePoint(w *enc, p point) {
	w.i(p.t)
	w.f(p.v)
	w.u(p.epoch)
	w.u(p.seq)
}

// readPoint reads writePoint's encoding, and version 3's, which followed a
// point with its time quality (returned as q).
func readPoint(r *dec, version uint64) (p point, q wire.TimeQuality) {
	p = point{t: r.i(), v: r.f(), epoch: r.u(), seq: r.u()}
	if version == 3 {
		q = wire.TimeQuality(r.u())
	}
	return p, q
}

// readPoint0 is readPoint without the time quality.
func readPoint0(r *dec, version uint64) point {
	p, _ := readPoint(r, version)
	return p
}

// restoreDevice recreates one device from deviceState's encoding. With a
// name in reload, the state must be that device's, which Unload dropped:
// its routes, pipelines and series exist and must match the state's.
func (e *Engine) restoreDevice(data []byte, reload string) (int32, error) {
	r := dec{b: data}
	version := uint64(oldestVersion)
	if len(data) > 0 && data[0] == 0 {
		r.b = data[1:]
		if version = r.u(); r.err != nil || version != checkpointVersion {
			return -1, fmt.Errorf("%w: device state version %d, want %d to %d", ErrCheckpoint, version, oldestVersion, checkpointVersion)
		}
	}
	name := r.s()
	if r.err != nil || name == "" {
		return -1, fmt.Errorf("%w: device without a name", ErrCheckpoint)
	}
	if reload != "" && name != reload {
		return -1, fmt.Errorf("%w: state of device %s given for %s", ErrCheckpoint, name, reload)
	}
	di := e.deviceIndex(name)
	if (reload != "") != e.devs[di].unloaded || reload == "" && len(e.devs[di].routes) > 0 {
		return -1, fmt.Errorf("%w: device %s restored twice", ErrCheckpoint, name)
	}
	d := &e.devs[di]
	d.has, d.maxT, d.lastSeen = r.t(), r.i(), r.i()
	if zone := r.s(); zone != "" && r.err == nil {
		loc, err := e.location(zone)
		if err != nil {
			return -1, fmt.Errorf("%w: %v", ErrCheckpoint, err)
		}
		d.zone, d.loc = zone, loc
	}
	nr := r.n(2)
	if reload != "" && nr != len(d.routes) {
		return -1, fmt.Errorf("%w: device %s: stored routes do not match", ErrCheckpoint, name)
	}
	for i := range nr {
		ch, q := r.s(), wire.Quantity(r.u())
		if r.err != nil {
			return -1, r.err
		}
		if reload == "" {
			e.newRoute(routeKey{name, ch, q})
		} else if rt := e.devs[di].routes[i]; rt.channel != ch || rt.q != q {
			return -1, fmt.Errorf("%w: device %s: stored routes do not match", ErrCheckpoint, name)
		}
	}
	d = &e.devs[di]
	if n := r.n(1); r.err != nil || n != len(d.dps) {
		return -1, fmt.Errorf("%w: device %s: pipelines do not match its routes", ErrCheckpoint, name)
	}
	for _, dpi := range d.dps {
		dp := &e.dps[dpi]
		dp.nextEvent = r.i()
		if r.t() {
			e.setDirtyOpen(dpi)
		}
		nd := r.n(4)
		for range nd {
			if dp.derived == nil {
				dp.derived = map[derivedKey]*derivedWin{}
			}
			k := derivedKey{idx: int(r.u()), start: r.i()}
			dp.derived[k] = &derivedWin{end: r.i(), revision: uint32(r.u())}
		}
		if n := r.n(1); r.err != nil || n != len(dp.series) {
			return -1, fmt.Errorf("%w: device %s: series do not match its routes", ErrCheckpoint, name)
		}
		for _, si := range dp.series {
			readSeries(&r, &e.series[si], e.pipes[e.series[si].pipe], version)
		}
	}
	// Version 4 states always end with the counter bases; version 3 states
	// end with them when written by a release that had counters across
	// windows, and without them before.
	if version > 3 || len(r.b) > 0 && r.err == nil {
		e.readBases(&r, d, version)
	}
	if r.err != nil {
		return -1, fmt.Errorf("device %s: %w", name, r.err)
	}
	if len(r.b) != 0 {
		return -1, fmt.Errorf("%w: device %s: %d trailing bytes", ErrCheckpoint, name, len(r.b))
	}
	return di, nil
}

func readSeries(r *dec, s *series, p *pipe, version uint64) {
	nw := r.n(8)
	for range nw {
		x := readWin(r, version)
		if r.err == nil && (!p.validWin(x, p.paned, false) || len(s.wins) > 0 && x.start <= s.wins[len(s.wins)-1].start) {
			r.fail("window")
		}
		s.wins = append(s.wins, x)
	}
	if cur := r.i(); cur >= 0 && cur < int64(len(s.wins)) {
		s.cur = s.wins[cur]
	}
	np := r.n(8)
	for range np {
		x := readWin(r, version)
		if r.err == nil && (!p.paned || !p.validWin(x, false, true) || len(s.panes()) > 0 && x.start <= s.panes()[len(s.panes())-1].start) {
			r.fail("pane")
		}
		s.setPanes(append(s.panes(), x))
	}
	if !r.t() {
		return
	}
	ss := &sessionState{emitted: map[int64]*sessEmit{}}
	npts := r.n(12)
	for range npts {
		jp := jpoint{}
		jp.point, jp.q = readPoint(r, version)
		if version > 3 {
			jp.q = wire.TimeQuality(r.u())
		}
		col := r.i()
		if r.err == nil && (col < 0 || col >= int64(max(p.joinCols, 1))) {
			r.fail("session column")
		}
		jp.col = int8(col)
		ss.pts = append(ss.pts, jp)
	}
	ne := r.n(5)
	for range ne {
		start := r.i()
		ss.emitted[start] = &sessEmit{end: r.i(), revision: uint32(r.u()), sig: r.u(), provisional: r.t()}
	}
	s.sess = ss
}

func readWin(r *dec, version uint64) *win {
	x := &win{start: r.i(), end: r.i(), revision: uint32(r.u()), fired: r.t(), dirty: r.t(), count: r.i()}
	x.sum, x.shift, x.s1, x.s2, x.min, x.max = r.f(), r.f(), r.f(), r.f(), r.f(), r.f()
	x.first, x.last = readPoint0(r, version), readPoint0(r, version)
	x.worst = wire.TimeQuality(r.u())
	x.nslots = int32(r.i())
	ns := r.n(1)
	if ns > 0 {
		x.slots = make([]uint64, 0, ns)
		for range ns {
			x.slots = append(x.slots, r.u())
		}
	}
	npts := r.n(11)
	for range npts {
		x.pts = append(x.pts, readPoint0(r, version))
	}
	if version == 3 {
		readBinsV3(r, x)
		return x
	}
	x.binned = r.t()
	nb := r.n(22)
	if nb > 0 {
		x.bins = make([]bin, 0, nb)
	}
	for range nb {
		slot, n := r.u(), r.u()
		b := bin{nslot: n<<binSlotBits | slot, sum: r.f(), firstT: x.start + r.i()}
		b.lastT = b.firstT + r.i()
		b.lastV, b.lastEpoch, b.lastSeq = r.f(), r.u(), r.u()
		if r.err == nil && (slot >= uint64(x.nslots) || n == 0 || n >= 1<<(64-binSlotBits) ||
			len(x.bins) > 0 && slot <= x.bins[len(x.bins)-1].slot()) {
			r.fail("bin")
		}
		x.bins = append(x.bins, b)
	}
	return x
}

// validWin reports whether a restored window has the shape this pipeline
// gives its windows (record: a paned pipeline's revision record; pane: a
// slide-wide pane), so corrupt state cannot make later arithmetic index
// outside its coverage bitmap or size one without bound.
func (p *pipe) validWin(x *win, record, pane bool) bool {
	span := x.end - x.start
	if x.start < -int64(48*time.Hour) || x.end > MaxTimeNs+int64(800*time.Hour) || span <= 0 {
		return false
	}
	switch k := p.spec.Window.Kind; {
	case k == Session:
		return false // sessions keep points, not windows
	case pane && span != p.slide, !pane && (k == Tumbling || k == Sliding) && span != p.size:
		return false
	case k == Day || k == Week || k == Month:
		if span > int64(32*24*time.Hour) {
			return false
		}
	}
	if record {
		return x.nslots == 0 && len(x.slots) == 0 && len(x.pts) == 0 && len(x.bins) == 0
	}
	n := (span + p.slotW - 1) / p.slotW
	return int64(x.nslots) == n && len(x.slots) == int(n+63)/64
}

// readBinsV3 reads version 3's bins, one per slot of a binned window,
// keeping those holding readings.
func readBinsV3(r *dec, x *win) {
	nb := r.n(12)
	x.binned = nb > 0
	for i := range nb {
		sum, n, firstT, last := r.f(), r.i(), r.i(), readPoint0(r, 3)
		if r.err == nil && (i >= int(x.nslots) || n < 0 || n >= 1<<(63-binSlotBits)) {
			r.fail("bin")
		}
		if n == 0 {
			continue
		}
		x.bins = append(x.bins, bin{sum: sum, firstT: firstT, lastT: last.t, lastV: last.v, lastEpoch: last.epoch, lastSeq: last.seq,
			nslot: uint64(n)<<binSlotBits | uint64(i)})
	}
}
