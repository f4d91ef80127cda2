package window

import (
	"cmp"
	"fmt"
	"log/slog"
	"math"
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
	// idleCand lists the device-pipelines with dirtyOpen set (idleSpare is
	// the other buffer Advance swaps with).
	idleCand, idleSpare []int32
	// dirtyDevs lists the devices changed since the last TakeDelta.
	dirtyDevs []int32
	// batchRoutes is ApplyBatch's scratch.
	batchRoutes []Route
	stats       Stats
	log         *slog.Logger
	// loader reads a device's stored state back (WithStateLoader);
	// loadErr is its first failure, after which the engine is unusable.
	loader  func(device string) ([]byte, error)
	loadErr error
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
	OpenWindows  int    // windows currently held (in memory or unloaded)
	CounterReset uint64 // counter resets seen in emitted final results
	// Unloaded counts devices whose windows are out of memory (Unload);
	// it is not checkpointed: a restored engine holds every device.
	Unloaded int
}

type pendingRefire struct {
	series int32
	w      *win
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
	q             wire.Quantity // Key.Quantity
	needPts       bool          // an aggregation needs the readings in time order
	needBins      bool          // an aggregation needs per-slot sums
	// carry: an energy counter in non-overlapping windows, whose first
	// increment comes from the series' previous reading (carry.go).
	carry   bool
	channel string // Key.Channel (its device is the device's name)
	wins    []*win // windows; records only for paned pipelines
	cur     *win
	pn      *[]*win // paned pipelines: data per slide-wide pane
	sess    *sessionState
	base    *point // last reading of the latest purged window (carry series)
}

// key is the result key of series s.
func (e *Engine) key(s *series) Key {
	return Key{Device: e.devs[s.dev].name, Channel: s.channel, Quantity: s.q}
}

// panes are a paned series' panes, in start order.
func (s *series) panes() []*win {
	if s.pn == nil {
		return nil
	}
	return *s.pn
}

func (s *series) setPanes(l []*win) {
	if s.pn == nil {
		s.pn = new([]*win)
	}
	*s.pn = l
}

// point is a reading as a window keeps it: what event-time order (time,
// then sequence) and the values need.
type point struct {
	t     int64
	v     float64
	epoch uint64
	seq   uint64
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
	binned     bool // bins are kept (EnergyBinned)
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
	bins       []bin // slots with readings, in slot order, if binned
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
	// activeMask has a bit per joined column of which one must be
	// non-zero for a row to count (0: every complete row counts);
	// stateMask the columns StateReadings/StateMerged count.
	activeMask, stateMask uint64
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
	for i, c := range spec.Join {
		if c == spec.Active || slices.Contains(spec.ActiveAny, c) {
			p.activeMask |= 1 << i
		}
	}
	p.stateMask = p.activeMask
	if p.stateMask == 0 {
		p.stateMask = 1<<len(spec.Join) - 1
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
	di := e.deviceIndex(device)
	if e.devs[di].zone == zone {
		return nil
	}
	if e.devs[di].unloaded && !e.load(di) {
		return e.loadErr
	}
	d := &e.devs[di]
	d.zone, d.loc = zone, loc
	e.markDirty(di)
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
