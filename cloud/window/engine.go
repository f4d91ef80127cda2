package window

import (
	"cmp"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/gridedge/gridedge/shared/wire"
)

const (
	noTime = math.MinInt64
	never  = math.MaxInt64
	// maxSlots caps the coverage bitmap of one window; longer windows get
	// wider slots.
	maxSlots = 4096
	// nsPerHour converts W·ns to Wh.
	nsPerHour = float64(time.Hour)
)

// MaxTimeNs is the latest event time the engine accepts (2^62 ns after
// the epoch, in 2116); earlier than the epoch is refused too. Window
// arithmetic has headroom above it.
const MaxTimeNs = int64(1) << 62

// Engine evaluates pipelines over readings. It is not safe for concurrent use.
type Engine struct {
	pipes    []*pipe
	devIndex devTable
	devs     []device
	routeTab []route
	// lastDev caches the device of the previous Apply: readings arrive in
	// per-device batches, so most lookups skip the map.
	lastDev     int32
	lastDevName string
	series      []series
	dps         []devPipe

	now          int64
	nextIdleScan int64
	minIdle      int64 // shortest idle timeout of any pipeline, 0 if none
	applied      uint64
	zones        map[string]*time.Location

	out    Output
	spare  Output
	arena  []float64
	free   []*win
	spans  []Span
	fired  []int64
	merged win // scratch for merging panes
	// Re-fires caused by readings within the allowed lateness are coalesced
	// until TakeOutput, so a backlog re-fires each window once.
	pending     []pendingRefire
	pendingSess []int32
	stats       Stats
	log         *slog.Logger
}

// Stats are the engine's counters since it was created (restored counters
// continue from the checkpoint).
type Stats struct {
	Readings     uint64 // readings applied
	Unrouted     uint64 // readings no pipeline selected
	Rejected     uint64 // readings with a non-finite value or a time outside [0, MaxTimeNs], not applied
	Late         uint64 // readings sent to the late stream (once per pipeline)
	Results      uint64 // results emitted, all revisions
	Provisional  uint64 // provisional results emitted
	Refires      uint64 // revisions > 1 caused by late readings
	OpenWindows  int    // windows currently held
	CounterReset uint64 // counter resets seen in emitted final results
}

type pendingRefire struct {
	series int32
	w      *win
}

type routeKey struct {
	device, channel string
	q               wire.Quantity
}

// Route is a pre-resolved (device, channel, quantity) series; ApplyRoute
// with it skips the lookup Apply does per reading.
type Route int32

type route struct {
	key     routeKey
	dev     int32
	targets []target
}

// target is one series a route feeds, with its column in the pipeline's
// Join (-1 if none); one slice keeps the hot path to one cache line.
type target struct {
	series int32
	join   int8
}

type device struct {
	name     string
	has      bool
	maxT     int64
	lastSeen int64
	zone     string
	loc      *time.Location
	dps      []int32
	routes   []devRoute
}

// devRoute is one of a device's routes with the part of its key Resolve
// compares, so matching a reading scans one small array instead of
// visiting a route (its own cache line) per candidate.
type devRoute struct {
	channel string
	q       wire.Quantity
	route   int32
}

type devPipe struct {
	pipe      int32
	dev       int32
	series    []int32
	nextEvent int64
	dirtyOpen bool
	derived   map[derivedKey]*derivedWin
}

type derivedKey struct {
	idx   int
	start int64
}

type derivedWin struct {
	end      int64
	revision uint32
}

type series struct {
	pipe, dp, dev int32
	needPts       bool // an aggregation needs the readings in time order
	needBins      bool // an aggregation needs per-slot sums
	key           Key
	wins          []*win // windows; records only for paned pipelines
	panes         []*win // paned pipelines: data per slide-wide pane
	cur           *win
	sess          *sessionState
}

type point struct {
	t     int64
	v     float64
	epoch uint64
	seq   uint64
	q     wire.TimeQuality
}

func cmpPoint(a, b point) int {
	if c := cmp.Compare(a.t, b.t); c != 0 {
		return c
	}
	if c := cmp.Compare(a.epoch, b.epoch); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// win is the state of one window of one series. Statistics are kept
// incrementally; points only when the pipeline needs event-time order.
type win struct {
	start, end int64
	revision   uint32
	fired      bool // a final result was emitted
	pending    bool // queued in Engine.pending for a re-fire
	dirty      bool // changed since the last emission
	unsorted   bool
	count      int64
	sum        float64
	shift      float64 // first value applied; s1, s2 are sums of (v - shift)
	s1, s2     float64
	min, max   float64
	first      point
	last       point
	worst      wire.TimeQuality
	nslots     int32
	slots      []uint64
	slot0      [1]uint64 // backs slots when one word is enough
	pts        []point
	bins       []bin
}

type pipe struct {
	spec     Pipeline
	idx      int32
	names    []string
	funcs    []Func
	derived  []*Expr
	dnames   [][]string
	loc      *time.Location
	ooo      int64
	late     int64
	idle     int64
	maxGap   int64
	slotW    int64
	size     int64
	slide    int64
	joinKey  string
	joinIdx  map[string]int8
	joinCols int
	active   int // column that must be non-zero, -1 for none
	// paned sliding pipelines keep each reading once, in a slide-wide pane;
	// windows are records (revision, flags) merged from panes on emission.
	paned bool
}

// Option configures an Engine.
type Option func(*Engine)

// WithLogger sets the logger for rare events (a series no pipeline
// selects, a restored checkpoint); the default discards.
func WithLogger(l *slog.Logger) Option { return func(e *Engine) { e.log = l } }

// New compiles pipelines into an engine. Pipeline names must be unique.
func New(pipelines []Pipeline, opts ...Option) (*Engine, error) {
	e := &Engine{
		devIndex: newDevTable(),
		lastDev:  -1,
		zones:    map[string]*time.Location{},
		log:      slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(e)
	}
	seen := map[string]bool{}
	for i := range pipelines {
		p, err := compile(pipelines[i], int32(i))
		if err != nil {
			return nil, err
		}
		if seen[p.spec.Name] {
			return nil, fmt.Errorf("pipeline %s: name used twice", p.spec.Name)
		}
		seen[p.spec.Name] = true
		e.pipes = append(e.pipes, p)
		if p.idle > 0 && (e.minIdle == 0 || p.idle < e.minIdle) {
			e.minIdle = p.idle
		}
	}
	return e, nil
}

func compile(spec Pipeline, idx int32) (*pipe, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	p := &pipe{spec: spec, idx: idx, loc: time.UTC}
	for _, a := range spec.Aggregations {
		p.names = append(p.names, a.Name)
		p.funcs = append(p.funcs, a.Func)
	}
	for _, d := range spec.Derived {
		x, err := ParseExpr(d.Expr)
		if err != nil {
			return nil, err
		}
		p.derived = append(p.derived, x)
		p.dnames = append(p.dnames, []string{"value"})
	}
	if spec.TimeZone != "" {
		loc, err := time.LoadLocation(spec.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("pipeline %s: %w", spec.Name, err)
		}
		p.loc = loc
	}
	p.ooo = int64(spec.OutOfOrderness)
	p.late = int64(spec.AllowedLateness)
	p.idle = int64(spec.IdleTimeout)
	p.maxGap = int64(spec.MaxGap)
	if p.maxGap == 0 {
		p.maxGap = int64(time.Second)
	}
	p.size = int64(spec.Window.Size)
	p.slide = int64(spec.Window.Slide)
	p.slotW = int64(spec.CoverageSlot())
	if len(spec.Join) > 0 {
		p.joinIdx = map[string]int8{}
		for i, c := range spec.Join {
			p.joinIdx[c] = int8(i)
		}
		p.joinCols = len(spec.Join)
		p.joinKey = joinName(spec.Join)
	}
	p.paned = spec.Window.Kind == Sliding && p.size%p.slide == 0 && p.slide%p.slotW == 0
	p.active = slices.Index(spec.Join, spec.Active)
	if spec.Active == "" {
		p.active = -1
	}
	return p, nil
}

// SetTimeZone sets the IANA zone of a device's site for calendar windows
// created from now on (windows already open keep their bounds).
func (e *Engine) SetTimeZone(device, zone string) error {
	loc, err := e.location(zone)
	if err != nil {
		return fmt.Errorf("device %s: %w", device, err)
	}
	d := &e.devs[e.deviceIndex(device)]
	d.zone, d.loc = zone, loc
	return nil
}

func (e *Engine) location(zone string) (*time.Location, error) {
	if loc, ok := e.zones[zone]; ok {
		return loc, nil
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", zone, err)
	}
	e.zones[zone] = loc
	return loc, nil
}

func (e *Engine) deviceIndex(name string) int32 {
	if i := e.devIndex.find(name, e.devs); i >= 0 {
		return i
	}
	i := int32(len(e.devs))
	e.devs = append(e.devs, device{name: name, maxT: noTime})
	e.devIndex.insert(name, i, e.devs)
	return i
}

// Resolve returns the route of a series, creating its state on first use.
// A route is valid for the engine that returned it; resolve again after
// Restore.
func (e *Engine) Resolve(device, channel string, q wire.Quantity) Route {
	di := e.lastDev
	if di < 0 || device != e.lastDevName {
		di = e.deviceIndex(device)
		e.lastDev, e.lastDevName = di, e.devs[di].name
	}
	for i := range e.devs[di].routes {
		if dr := &e.devs[di].routes[i]; dr.q == q && dr.channel == channel {
			return Route(dr.route)
		}
	}
	return Route(e.newRoute(routeKey{device, channel, q}))
}

func (e *Engine) newRoute(k routeKey) int32 {
	dev := e.deviceIndex(k.device)
	d := &e.devs[dev]
	k.device = d.name // intern
	rt := route{dev: dev}
	for _, p := range e.pipes {
		if !p.selects(k.device, k.channel, k.q) {
			continue
		}
		ji := int8(-1)
		key := Key{Device: d.name, Channel: k.channel, Quantity: k.q}
		if p.joinIdx != nil {
			var ok bool
			if ji, ok = p.joinIdx[k.channel]; !ok {
				continue
			}
			key = Key{Device: d.name, Channel: p.joinKey}
		}
		dpi := e.devPipe(dev, p.idx)
		si := int32(-1)
		if p.joinIdx != nil {
			for _, s := range e.dps[dpi].series {
				si = s
			}
		}
		if si < 0 {
			si = int32(len(e.series))
			e.series = append(e.series, series{pipe: p.idx, dp: dpi, dev: dev, key: key})
			for _, f := range p.funcs {
				f = f.resolve(key.Quantity)
				e.series[si].needPts = e.series[si].needPts || f.needsPoints()
				e.series[si].needBins = e.series[si].needBins || f == EnergyBinned
			}
			e.dps[dpi].series = append(e.dps[dpi].series, si)
		}
		rt.targets = append(rt.targets, target{si, ji})
	}
	rt.key = k
	if len(rt.targets) == 0 {
		e.log.Debug("window: series selected by no pipeline", "device", k.device, "channel", k.channel, "quantity", k.q.Name())
	}
	i := int32(len(e.routeTab))
	e.routeTab = append(e.routeTab, rt)
	d.routes = append(d.routes, devRoute{channel: k.channel, q: k.q, route: i})
	return i
}

func (p *pipe) selects(device, channel string, q wire.Quantity) bool {
	for _, s := range p.spec.Inputs {
		if s.Matches(device, channel, q) {
			return true
		}
	}
	return false
}

func (e *Engine) devPipe(dev, p int32) int32 {
	for _, dpi := range e.devs[dev].dps {
		if e.dps[dpi].pipe == p {
			return dpi
		}
	}
	dpi := int32(len(e.dps))
	e.dps = append(e.dps, devPipe{pipe: p, dev: dev, nextEvent: never})
	e.devs[dev].dps = append(e.devs[dev].dps, dpi)
	return dpi
}

// Apply feeds one reading. Results and late readings it causes are held
// until TakeOutput. Apply never fails: a reading no pipeline selects is
// counted in Stats.Unrouted.
func (e *Engine) Apply(r *Reading) {
	e.ApplyRoute(e.Resolve(r.Device, r.Channel, r.Quantity), r)
}

// ApplyBatch applies rs in order.
func (e *Engine) ApplyBatch(rs []Reading) {
	for i := range rs {
		e.Apply(&rs[i])
	}
}

// ApplyRoute is Apply for a reading whose series was resolved with Resolve;
// r's Device, Channel and Quantity are not read.
func (e *Engine) ApplyRoute(rt Route, r *Reading) {
	if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) || r.TimeNs < 0 || r.TimeNs > MaxTimeNs {
		// wire.DecodeBatch already refuses non-finite values; a NaN would
		// poison every aggregate of its windows, and a time near the int64
		// limit would overflow window arithmetic, so never apply either.
		e.stats.Rejected++
		return
	}
	e.stats.Readings++
	ro := &e.routeTab[rt]
	d := &e.devs[ro.dev]
	d.lastSeen = e.now
	had, prevMax := d.has, d.maxT
	if len(ro.targets) == 0 {
		e.stats.Unrouted++
	}
	for _, tg := range ro.targets {
		e.add(tg.series, tg.join, r, had, prevMax)
	}
	if had && r.TimeNs <= prevMax {
		return
	}
	d.has, d.maxT = true, r.TimeNs
	for _, dpi := range d.dps {
		dp := &e.dps[dpi]
		if wm := e.pipes[dp.pipe].watermark(true, r.TimeNs); wm >= dp.nextEvent {
			e.advance(dpi, wm)
		}
	}
}

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
			e.dps[s.dp].dirtyOpen = true
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
		if sp.End <= wm {
			w.dirty = true
			if !w.pending {
				w.pending = true
				e.pending = append(e.pending, pendingRefire{si, w})
			}
			continue
		}
		w.dirty = true
		e.dps[s.dp].dirtyOpen = true
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

// value computes aggregate i of w. counterResets is set for EnergyCounter.
func (p *pipe) value(w *win, f Func, q wire.Quantity) (v float64, resets int) {
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
		return counterEnergy(w.sorted())
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
func counterEnergy(pts []point) (wh float64, resets int) {
	for i := 1; i < len(pts); i++ {
		d := pts[i].v - pts[i-1].v
		if d < 0 {
			resets++
			d = pts[i].v
		}
		wh += d
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
	res := Result{
		Pipeline:     p.spec.Name,
		Key:          s.key,
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
		res.Values[i], resets = p.value(w, f, s.key.Quantity)
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
			for cut < len(s.panes) && s.panes[cut].start+p.size+p.late <= wm {
				if len(e.free) < 1<<16 {
					e.free = append(e.free, s.panes[cut])
				}
				cut++
			}
			if cut > 0 {
				s.panes = slices.Delete(s.panes, 0, cut)
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
	for dpi := range e.dps {
		dp := &e.dps[dpi]
		p := e.pipes[dp.pipe]
		if !dp.dirtyOpen || p.idle <= 0 || e.now-e.devs[dp.dev].lastSeen < p.idle {
			continue
		}
		dp.dirtyOpen = false
		if p.spec.Window.Kind == Session {
			e.provisionalSessions(int32(dpi), p)
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
				e.derive(int32(dpi), start, true)
			}
		}
	}
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
			if c.key.Channel != channel || s != nil && c.key.Quantity >= s.key.Quantity {
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
			v, _ := p.value(w, p.funcs[ai], s.key.Quantity)
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
// reuse its slices instead of allocating.
func (e *Engine) Recycle(o Output) {
	clear(o.Results)
	clear(o.Late)
	e.spare = Output{Results: o.Results[:0], Late: o.Late[:0]}
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats { return e.stats }

// Now is the processing time of the last Advance.
func (e *Engine) Now() int64 { return e.now }

// MarkApplied records that the caller's durable input log has been applied
// through offset (inclusive). It is saved in the checkpoint; after Restore,
// replay the log from AppliedThrough()+1.
func (e *Engine) MarkApplied(offset uint64) { e.applied = offset }

// AppliedThrough is the last offset given to MarkApplied.
func (e *Engine) AppliedThrough() uint64 { return e.applied }

// Watermark returns a device's event-time watermark for a pipeline, and
// false when the device has no readings yet or the pipeline is unknown.
func (e *Engine) Watermark(pipeline, device string) (int64, bool) {
	di := e.devIndex.find(device, e.devs)
	if di < 0 || !e.devs[di].has {
		return 0, false
	}
	for _, p := range e.pipes {
		if p.spec.Name == pipeline {
			return p.watermark(true, e.devs[di].maxT), true
		}
	}
	return 0, false
}
