package window

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/gridedge/gridedge/shared/wire"
)

// Kind is the shape of a pipeline's windows.
type Kind uint8

// Window kinds. Day, Week (ISO, Monday first) and Month are aligned to the
// device's IANA time zone, so a day is 23 or 25 hours long across DST.
const (
	Tumbling Kind = iota + 1
	Sliding
	Session
	Day
	Week
	Month
)

var kindNames = map[Kind]string{
	Tumbling: "tumbling", Sliding: "sliding", Session: "session",
	Day: "day", Week: "week", Month: "month",
}

func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Func is an aggregation function.
type Func uint8

// Aggregation functions. First and Last are by event time (ties broken by
// sequence). Stddev is the sample standard deviation (n−1; 0 for one
// reading). EnergyCounter is the energy (Wh) seen by a cumulative Wh counter:
// the sum of increments between consecutive readings in the window, where a
// decrease is a counter reset and the new value counts as energy since the
// reset. EnergyIntegral integrates power (W) into Wh with a step (sample and
// hold) rule: each reading's value holds until the next reading, for at most
// MaxGap, never past the window end. Readings emits the window's readings as
// rows (feature snapshots, sessions).
const (
	Count Func = iota + 1
	Sum
	Mean
	Min
	Max
	First
	Last
	Stddev
	EnergyCounter
	EnergyIntegral
	Readings
	// Energy is EnergyCounter for energy series and EnergyBinned for every
	// other quantity, so one pipeline covers meters of both kinds.
	Energy
	// EnergyBinned integrates power (W) into Wh from per-slot summaries
	// (slots are the Coverage slots): within a slot, the readings before the
	// last stand at their mean power for the span from the first reading to
	// the last, and the last reading holds until the next reading, at most
	// MaxGap. For regular sampling it equals EnergyIntegral; in an
	// irregularly sampled slot it weights readings equally, and a gap
	// inside one slot is bridged. It keeps 56 B per slot holding readings
	// instead of 32 B per reading, so a day of 1 Hz power costs kilobytes,
	// not megabytes.
	EnergyBinned
	// StateReadings and StateMerged are for joined session pipelines: the
	// readings of the state channels (Active or ActiveAny; every joined
	// channel when neither is set) dated within the session, and how many
	// of them were merged into the per-second join — the last reading of
	// its channel in a second for which every joined channel has a
	// reading. StateMerged / StateReadings is the session's merged share.
	StateReadings
	StateMerged
)

var funcNames = map[Func]string{
	Count: "count", Sum: "sum", Mean: "mean", Min: "min", Max: "max",
	First: "first", Last: "last", Stddev: "stddev",
	EnergyCounter: "energy_counter", EnergyIntegral: "energy_integral",
	Readings: "readings", Energy: "energy", EnergyBinned: "energy_binned",
	StateReadings: "state_readings", StateMerged: "state_merged",
}

func (f Func) String() string {
	if n, ok := funcNames[f]; ok {
		return n
	}
	return fmt.Sprintf("func(%d)", uint8(f))
}

// ParseFunc maps a configuration name ("mean", "energy_counter", ...) to a Func.
func ParseFunc(name string) (Func, error) {
	for f, n := range funcNames {
		if n == name {
			return f, nil
		}
	}
	return 0, fmt.Errorf("unknown aggregation %q", name)
}

// needsPoints reports whether f needs the window's readings in event-time
// order, which the engine then keeps per window.
func (f Func) needsPoints() bool {
	return f == EnergyCounter || f == EnergyIntegral || f == Readings
}

// resolve turns Energy into the concrete function for quantity q.
func (f Func) resolve(q wire.Quantity) Func {
	if f != Energy {
		return f
	}
	if q == wire.Quantity_QUANTITY_ENERGY {
		return EnergyCounter
	}
	return EnergyBinned
}

// Selector picks input series by glob patterns (path.Match syntax) on device,
// channel and quantity name. An empty pattern matches everything.
type Selector struct {
	Device, Channel, Quantity string
}

// Matches reports whether the series (device, channel, q) is selected.
func (s Selector) Matches(device, channel string, q wire.Quantity) bool {
	return globMatch(s.Device, device) && globMatch(s.Channel, channel) && globMatch(s.Quantity, q.Name())
}

func globMatch(pattern, name string) bool {
	if pattern == "" || pattern == "*" {
		return true
	}
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

// Aggregation is one named output of a pipeline.
type Aggregation struct {
	Name string // output name, e.g. "energy"
	Func Func
}

// Derived is a series computed from other series' results of the same window
// and device, e.g. {Name: "rest", Expr: "mains.energy - sub1.energy"}.
type Derived struct {
	Name, Expr string
}

// WindowSpec is the window shape. Size is used by Tumbling and Sliding, Slide
// by Sliding, Gap, MinDuration and MaxDuration by Session.
type WindowSpec struct {
	Kind        Kind
	Size, Slide time.Duration
	Gap         time.Duration
	MinDuration time.Duration
	// MaxDuration, when set, cuts a session whose rows span this long: the
	// row that would make it longer starts the next session. It bounds the
	// readings a session holds (a stream that never pauses would hold
	// them all). 0: no bound.
	MaxDuration time.Duration
}

// Pipeline declares one windowed computation.
type Pipeline struct {
	Name         string
	Inputs       []Selector
	Window       WindowSpec
	Aggregations []Aggregation
	// OutOfOrderness is the bound subtracted from a device's max event time to
	// get its watermark.
	OutOfOrderness time.Duration
	// AllowedLateness keeps a fired window open for updates this long (in
	// event time) past its end.
	AllowedLateness time.Duration
	// IdleTimeout (processing time) after which a silent device's open
	// windows are emitted as provisional results; 0 disables.
	IdleTimeout time.Duration
	// MaxGap bounds how long a reading holds for EnergyIntegral, and is the
	// slot width for Coverage. Default 1 s.
	MaxGap time.Duration
	// Derived series, computed per window from this pipeline's results.
	Derived []Derived
	// TimeZone is the IANA zone for calendar windows of devices without one
	// set by SetTimeZone. Default UTC.
	TimeZone string
	// Join, for Session pipelines, names the channels joined per second into
	// one row stream per device (e.g. ["mains", "kettle"]); the session is
	// over the joined rows. Empty means sessions over each series alone.
	Join []string
	// Active, for a joined session pipeline, names the joined channel that
	// must be non-zero for a row to count (e.g. the appliance's on/off
	// state), so sessions are the appliance's active periods. Empty: every
	// complete row counts.
	Active string
	// ActiveAny is Active for several channels: a row counts when any of
	// them is non-zero (sessions are the periods when any appliance is on).
	// At most one of Active and ActiveAny is set.
	ActiveAny []string
	// Requires limits the pipeline to devices that have a series matching
	// one of these selectors (e.g. {Quantity: "state"}): a device's series
	// enter the pipeline from the first reading of such a series on.
	// Empty: every device.
	Requires []Selector
}

// maxJoin bounds the channels of a join (one bit each in a row's mask).
const maxJoin = 64

// maxWindowsPerReading bounds size/slide of sliding windows.
const maxWindowsPerReading = 3600

// Validate reports the first problem with p, naming the field.
func (p *Pipeline) Validate() error {
	if p.Name == "" {
		return errors.New("pipeline: name is empty")
	}
	if len(p.Inputs) == 0 {
		return fmt.Errorf("pipeline %s: no inputs", p.Name)
	}
	for i, s := range p.Inputs {
		for _, pat := range []string{s.Device, s.Channel, s.Quantity} {
			if _, err := path.Match(pat, ""); err != nil {
				return fmt.Errorf("pipeline %s: input %d: pattern %q: %w", p.Name, i, pat, err)
			}
		}
	}
	for i, s := range p.Requires {
		for _, pat := range []string{s.Device, s.Channel, s.Quantity} {
			if _, err := path.Match(pat, ""); err != nil {
				return fmt.Errorf("pipeline %s: requires %d: pattern %q: %w", p.Name, i, pat, err)
			}
		}
	}
	w := p.Window
	switch w.Kind {
	case Tumbling:
		if w.Size <= 0 {
			return fmt.Errorf("pipeline %s: tumbling window needs size > 0", p.Name)
		}
	case Sliding:
		if w.Size <= 0 || w.Slide <= 0 || w.Slide > w.Size {
			return fmt.Errorf("pipeline %s: sliding window needs 0 < slide <= size", p.Name)
		}
		// Every reading lands in size/slide windows.
		if w.Size/w.Slide > maxWindowsPerReading {
			return fmt.Errorf("pipeline %s: sliding window puts each reading in %d windows (limit %d)", p.Name, w.Size/w.Slide, maxWindowsPerReading)
		}
	case Session:
		if w.Gap <= 0 {
			return fmt.Errorf("pipeline %s: session window needs gap > 0", p.Name)
		}
		if w.MaxDuration < 0 || w.MaxDuration > 0 && w.MaxDuration <= w.MinDuration {
			return fmt.Errorf("pipeline %s: session max_duration must be above min_duration", p.Name)
		}
	case Day, Week, Month:
	default:
		return fmt.Errorf("pipeline %s: unknown window kind %d", p.Name, w.Kind)
	}
	if len(p.Aggregations) == 0 {
		return fmt.Errorf("pipeline %s: no aggregations", p.Name)
	}
	seen := map[string]bool{}
	for _, a := range p.Aggregations {
		if a.Name == "" || seen[a.Name] {
			return fmt.Errorf("pipeline %s: aggregation name %q empty or repeated", p.Name, a.Name)
		}
		seen[a.Name] = true
		if _, ok := funcNames[a.Func]; !ok {
			return fmt.Errorf("pipeline %s: aggregation %s: unknown function", p.Name, a.Name)
		}
	}
	if p.OutOfOrderness < 0 || p.AllowedLateness < 0 || p.IdleTimeout < 0 || p.MaxGap < 0 {
		return fmt.Errorf("pipeline %s: durations must not be negative", p.Name)
	}
	if p.TimeZone != "" {
		if _, err := time.LoadLocation(p.TimeZone); err != nil {
			return fmt.Errorf("pipeline %s: time zone: %w", p.Name, err)
		}
	}
	for _, d := range p.Derived {
		if d.Name == "" {
			return fmt.Errorf("pipeline %s: derived series without a name", p.Name)
		}
		if _, err := ParseExpr(d.Expr); err != nil {
			return fmt.Errorf("pipeline %s: derived %s: %w", p.Name, d.Name, err)
		}
	}
	if w.Kind == Session && len(p.Derived) > 0 {
		return fmt.Errorf("pipeline %s: derived series are not supported on session windows", p.Name)
	}
	if w.MaxDuration != 0 && w.Kind != Session {
		return fmt.Errorf("pipeline %s: max_duration is only for session windows", p.Name)
	}
	if len(p.Join) > 0 && w.Kind != Session {
		return fmt.Errorf("pipeline %s: join is only supported with session windows", p.Name)
	}
	if p.Active != "" && !slices.Contains(p.Join, p.Active) {
		return fmt.Errorf("pipeline %s: active channel %q is not in join %v", p.Name, p.Active, p.Join)
	}
	if p.Active != "" && len(p.ActiveAny) > 0 {
		return fmt.Errorf("pipeline %s: set active or active_any, not both", p.Name)
	}
	for _, c := range p.ActiveAny {
		if !slices.Contains(p.Join, c) {
			return fmt.Errorf("pipeline %s: active_any channel %q is not in join %v", p.Name, c, p.Join)
		}
	}
	if len(p.Join) > maxJoin {
		return fmt.Errorf("pipeline %s: join of %d channels (limit %d)", p.Name, len(p.Join), maxJoin)
	}
	for i, c := range p.Join {
		if slices.Contains(p.Join[:i], c) {
			return fmt.Errorf("pipeline %s: channel %q joined twice", p.Name, c)
		}
	}
	for _, a := range p.Aggregations {
		if (a.Func == StateReadings || a.Func == StateMerged) && len(p.Join) == 0 {
			return fmt.Errorf("pipeline %s: aggregation %s needs a joined session pipeline", p.Name, a.Name)
		}
	}
	return nil
}

// requires reports whether a device with the series keys qualifies for
// the pipeline (always, without Requires).
func (p *Pipeline) requiresMet(device, channel string, q wire.Quantity) bool {
	for _, s := range p.Requires {
		if s.Matches(device, channel, q) {
			return true
		}
	}
	return false
}

// CoverageSlot is the slot width Coverage counts in: MaxGap (default 1 s),
// widened so that no window has more than 4096 slots.
func (p *Pipeline) CoverageSlot() time.Duration {
	gap := p.MaxGap
	if gap <= 0 {
		gap = time.Second
	}
	var longest time.Duration
	switch p.Window.Kind {
	case Tumbling, Sliding:
		longest = p.Window.Size
	case Day:
		longest = 25 * time.Hour
	case Week:
		longest = 7*24*time.Hour + time.Hour
	case Month:
		longest = 31*24*time.Hour + time.Hour
	}
	return max(gap, (longest+maxSlots-1)/maxSlots)
}
