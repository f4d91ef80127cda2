package sim

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Profiles.
const (
	ProfileHousehold = "household"
	ProfileReplay    = "replay"
)

// Buffer modes: where each virtual meter's buffer keeps its readings.
const (
	// BufferDisk gives every meter the gateway's own storage engine in its
	// own directory (Badger on 64-bit): the fidelity mode, ~1.5 MB per meter.
	BufferDisk = "disk"
	// BufferShared puts every meter's buffer in one shared store, a
	// namespace each, journaled to one file and fsynced once a second for
	// all: a crash loses at most that second, as on a gateway.
	BufferShared = "shared"
	// BufferMemory keeps the buffers in memory and writes them once, at a
	// clean stop; a crash loses what was not yet acked.
	BufferMemory = "memory"
)

// MaxMeters bounds Config.Meters.
const MaxMeters = 200_000

// DefaultReplayFile is the replay data's path relative to the repository
// root.
const DefaultReplayFile = "testdata/household/uci-household-2006-12.csv"

// Config describes one simulation run.
type Config struct {
	// MQTTURL is the broker, e.g. tcp://127.0.0.1:1883.
	MQTTURL string
	Site    string
	// Meters is the number of virtual meters (devices), each a full agent.
	Meters int
	// DevicePrefix names devices Prefix0001, Prefix0002, ... (default "sim-").
	DevicePrefix string
	// Profile is ProfileHousehold (default) or ProfileReplay.
	Profile string
	// ReplayFile is the UCI household CSV (default DefaultReplayFile).
	ReplayFile string
	// Start is the simulated start (household; default: Backfill before
	// now; without Backfill, Duration before now, truncated to the minute,
	// so the run ends near the present; with Speed 1 or Duration 0, now).
	// It may not be in the future. A data directory that already sampled
	// moves a defaulted start after its newest sample and refuses a given
	// one at or before it. Replay always starts at the file's first minute.
	Start time.Time
	// Backfill (household) starts the run that long before now: the clock
	// catches up at Speed, then runs at real time (the simulated clock
	// never passes the wall clock).
	Backfill time.Duration
	// Duration is the simulated time to sample (replay default: the whole
	// file). For the household profile 0 samples until the run is
	// interrupted.
	Duration time.Duration
	// Speed is simulated seconds per real second (86400/60 = a day a minute).
	Speed float64
	// Interval is the household sampling interval in simulated time
	// (default 10 s). Replay always samples once per file minute.
	Interval time.Duration
	// Seed makes the household profile, the faults, the jitter and the
	// reversed pairs reproducible (default 1).
	Seed int64
	// DataDir holds each meter's buffer and state (required).
	DataDir string
	// Buffer is BufferDisk (default), BufferShared or BufferMemory.
	Buffer string
	// States adds the household's appliance on/off channels (kettle, oven,
	// washer, fridge, water_heater; quantity state) to every meter.
	States bool

	// Ramp starts meters in steps instead of all at once.
	Ramp Ramp
	// Jitter delays each sample's reading by a random real time after its
	// scheduled moment (its time stays the scheduled one).
	Jitter Jitter
	// ReversedPairs is the probability that a sample and the next one are
	// taken (and sent) in reverse order.
	ReversedPairs float64
	// Faults are injected per meter; see Fault.
	Faults []Fault

	// Credentials maps "<site>/<device>" to the device's MQTT password.
	// When set, every meter connects with that username and password and
	// client id = username, and a meter without an entry is an error.
	Credentials map[string]string
	// SourceAddrs are the local addresses meters connect from, round robin
	// (default: 127.0.0.1, plus further 127.0.0.x when more meters than
	// one address has ephemeral ports connect to a loopback broker).
	SourceAddrs []netip.Addr

	// Truth, when set, receives the truth CSV.
	Truth io.Writer
	// Record, when set, receives every generated reading in the recording
	// format that Play sends again (see Recorder).
	Record io.Writer
	// Progress, when set, is called every ProgressInterval (default 1 s)
	// while the run lasts, and once at the end.
	Progress         func(Progress)
	ProgressInterval time.Duration

	// DrainTimeout bounds the wait for every reading to be acked once
	// sampling has ended (default 2 min).
	DrainTimeout time.Duration
	// AckTimeout is the agents' resend timeout (default 10 s).
	AckTimeout time.Duration
	Logger     *slog.Logger
}

// Ramp starts Step more meters every Every (real time) until all run.
type Ramp struct {
	Step  int
	Every time.Duration
}

// ParseRamp reads "STEP/EVERY", e.g. "100/5s"; "" is no ramp.
func ParseRamp(s string) (Ramp, error) {
	if s == "" {
		return Ramp{}, nil
	}
	n, d, ok := strings.Cut(s, "/")
	step, err1 := strconv.Atoi(n)
	every, err2 := time.ParseDuration(d)
	if !ok || err1 != nil || err2 != nil || step <= 0 || every <= 0 {
		return Ramp{}, fmt.Errorf("ramp %q: want STEP/EVERY with both > 0, e.g. 100/5s", s)
	}
	return Ramp{Step: step, Every: every}, nil
}

func (r Ramp) String() string {
	if r.Step == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%s", r.Step, r.Every)
}

// Jitter is a random real-time delay: uniform in [Min, Max] plus uniform in
// [ExtraMin, ExtraMax] (the reference load: 1–3 s plus 1–100 ms).
type Jitter struct {
	Min, Max           time.Duration
	ExtraMin, ExtraMax time.Duration
}

// ParseJitter reads "MIN..MAX" or "MIN..MAX+MIN..MAX", e.g.
// "1s..3s+1ms..100ms"; "" is no jitter.
func ParseJitter(s string) (Jitter, error) {
	if s == "" {
		return Jitter{}, nil
	}
	bad := fmt.Errorf("jitter %q: want MIN..MAX or MIN..MAX+MIN..MAX with 0 <= MIN <= MAX, e.g. 1s..3s+1ms..100ms", s)
	span := func(p string) (time.Duration, time.Duration, error) {
		a, b, ok := strings.Cut(p, "..")
		lo, err1 := time.ParseDuration(a)
		hi, err2 := time.ParseDuration(b)
		if !ok || err1 != nil || err2 != nil || lo < 0 || hi < lo {
			return 0, 0, bad
		}
		return lo, hi, nil
	}
	main, extra, hasExtra := strings.Cut(s, "+")
	var j Jitter
	var err error
	if j.Min, j.Max, err = span(main); err != nil {
		return Jitter{}, err
	}
	if hasExtra {
		if j.ExtraMin, j.ExtraMax, err = span(extra); err != nil {
			return Jitter{}, err
		}
	}
	return j, nil
}

func (j Jitter) zero() bool { return j == Jitter{} }

func (j Jitter) String() string {
	if j.zero() {
		return ""
	}
	s := fmt.Sprintf("%s..%s", j.Min, j.Max)
	if j.ExtraMax > 0 {
		s += fmt.Sprintf("+%s..%s", j.ExtraMin, j.ExtraMax)
	}
	return s
}

// Validate applies the defaults to a copy of c and reports every invalid
// field, one clause each, naming the field. Run calls it; a command line
// calls it first to refuse nonsense before anything starts.
func (c Config) Validate() error {
	return c.defaults()
}

func (c *Config) defaults() error {
	if c.Site == "" {
		c.Site = "sim"
	}
	if c.DevicePrefix == "" {
		c.DevicePrefix = "sim-"
	}
	if c.Profile == "" {
		c.Profile = ProfileHousehold
	}
	if c.ReplayFile == "" {
		c.ReplayFile = DefaultReplayFile
	}
	if c.Interval == 0 {
		c.Interval = 10 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Buffer == "" {
		c.Buffer = BufferDisk
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 2 * time.Minute
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = 10 * time.Second
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	var errs []error
	if c.MQTTURL == "" {
		errs = append(errs, errors.New("mqtt url: must be set"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir: must be set"))
	}
	if c.Meters < 1 || c.Meters > MaxMeters {
		errs = append(errs, fmt.Errorf("meters: must be 1..%d, got %d", MaxMeters, c.Meters))
	}
	if !(c.Speed > 0) || c.Speed > 1e9 {
		errs = append(errs, fmt.Errorf("speed: must be > 0 and <= 1e9, got %v", c.Speed))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("duration: must be >= 0, got %v", c.Duration))
	}
	if c.Backfill < 0 {
		errs = append(errs, fmt.Errorf("backfill: must be >= 0, got %v", c.Backfill))
	}
	if c.Backfill > 0 && !c.Start.IsZero() {
		errs = append(errs, errors.New("backfill: give a start or a backfill, not both"))
	}
	if c.Start.After(time.Now()) {
		errs = append(errs, fmt.Errorf("start: %s is in the future; the simulator never stamps a reading ahead of the wall clock", c.Start.UTC().Format(time.RFC3339)))
	}
	if c.Interval < 0 {
		errs = append(errs, fmt.Errorf("interval: must be > 0, got %v", c.Interval))
	}
	switch c.Buffer {
	case BufferDisk, BufferShared, BufferMemory:
	default:
		errs = append(errs, fmt.Errorf("buffer: %q unknown (disk, shared or memory)", c.Buffer))
	}
	switch c.Profile {
	case ProfileHousehold:
		if c.Duration == 0 && len(c.Faults) > 0 {
			errs = append(errs, errors.New("faults: need a duration > 0 (they are placed within it)"))
		}
	case ProfileReplay:
		if c.States {
			errs = append(errs, errors.New("states: the replay file has no appliance states (household profile only)"))
		}
	default:
		errs = append(errs, fmt.Errorf("profile: %q unknown (household or replay)", c.Profile))
	}
	if c.Ramp.Step < 0 || c.Ramp.Every < 0 || (c.Ramp.Step > 0) != (c.Ramp.Every > 0) {
		errs = append(errs, fmt.Errorf("ramp: step and interval must both be > 0, got %d every %v", c.Ramp.Step, c.Ramp.Every))
	}
	if j := c.Jitter; j.Min < 0 || j.Max < j.Min || j.ExtraMin < 0 || j.ExtraMax < j.ExtraMin {
		errs = append(errs, fmt.Errorf("jitter: bounds must satisfy 0 <= min <= max, got %s", j))
	}
	if !(c.ReversedPairs >= 0 && c.ReversedPairs <= 1) {
		errs = append(errs, fmt.Errorf("reversed pairs: a probability in [0, 1], got %v", c.ReversedPairs))
	}
	for i, f := range c.Faults {
		if err := f.validate(); err != nil {
			errs = append(errs, fmt.Errorf("faults[%d]: %w", i, err))
		}
	}
	if c.DrainTimeout < 0 || c.AckTimeout < 0 || c.ProgressInterval < 0 {
		errs = append(errs, errors.New("drain timeout, ack timeout and progress interval: must be > 0"))
	}
	return errors.Join(errs...)
}
