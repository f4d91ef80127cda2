package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/gridedge/gridedge/edge/agent"
	"github.com/gridedge/gridedge/edge/buffer"
	"github.com/gridedge/gridedge/edge/config"
	"github.com/gridedge/gridedge/edge/publish"
	"github.com/gridedge/gridedge/edge/sensor"
)

// Profiles.
const (
	ProfileHousehold = "household"
	ProfileReplay    = "replay"
)

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
	// Start is the simulated start (household; default: Duration before
	// now, truncated to the minute, so the run ends near the present).
	// Replay always starts at the file's first minute.
	Start time.Time
	// Duration is the simulated time to sample (replay default: the whole
	// file).
	Duration time.Duration
	// Speed is simulated seconds per real second (86400/60 = a day a minute).
	Speed float64
	// Interval is the household sampling interval in simulated time
	// (default 10 s). Replay always samples once per file minute.
	Interval time.Duration
	// Seed makes the household profile reproducible (default 1).
	Seed int64
	// DataDir holds each meter's buffer and state (required).
	DataDir string
	// Truth, when set, receives the truth CSV.
	Truth io.Writer
	// DrainTimeout bounds the wait for every reading to be acked once
	// sampling has ended (default 2 min).
	DrainTimeout time.Duration
	// AckTimeout is the agents' resend timeout (default 10 s).
	AckTimeout time.Duration
	Logger     *slog.Logger
	// Credentials maps "<site>/<device_id>" to the meter's MQTT secret
	// (ReadCredentials); a meter listed connects as that user with the
	// client id equal to it. Nil: meters connect without credentials.
	Credentials map[string]string
}

// MeterResult is one virtual meter's outcome.
type MeterResult struct {
	Device    string
	SeqEpoch  uint64
	Generated uint64
	Acked     uint64
	Resent    uint64
	Unacked   int64
}

// Result is the outcome of a run.
type Result struct {
	Meters []MeterResult
	// Generated is the number of readings generated (and in the truth file).
	Generated uint64
	Unacked   int64
	// Missing is the number of `?` values skipped by the replay.
	Missing int
	// SimStart and SimEnd bound the sampled simulated time.
	SimStart, SimEnd time.Time
}

// ErrNotDrained is returned (wrapped) when readings were still unacked at
// the drain timeout.
var ErrNotDrained = errors.New("sim: readings not acknowledged before the drain timeout")

func (c *Config) defaults() error {
	if c.Meters == 0 {
		c.Meters = 1
	}
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
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 2 * time.Minute
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	var errs []error
	switch {
	case c.MQTTURL == "":
		errs = append(errs, errors.New("mqtt url: must be set"))
	case c.DataDir == "":
		errs = append(errs, errors.New("data dir: must be set"))
	}
	if c.Meters < 0 || c.Meters > 100_000 {
		errs = append(errs, fmt.Errorf("meters: must be 1..100000, got %d", c.Meters))
	}
	if c.Speed <= 0 {
		errs = append(errs, fmt.Errorf("speed: must be > 0, got %v", c.Speed))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("duration: must be >= 0, got %v", c.Duration))
	}
	if c.Interval < 0 {
		errs = append(errs, fmt.Errorf("interval: must be > 0, got %v", c.Interval))
	}
	switch c.Profile {
	case ProfileHousehold:
		if c.Duration == 0 {
			errs = append(errs, errors.New("duration: must be > 0 for the household profile"))
		}
	case ProfileReplay:
	default:
		errs = append(errs, fmt.Errorf("profile: %q unknown (household or replay)", c.Profile))
	}
	return errors.Join(errs...)
}

// meter is one virtual gateway.
type meter struct {
	device string
	a      *agent.Agent
}

// Run runs the simulation: it starts Meters agents on a shared simulated
// clock, samples until Duration of simulated time has passed, then waits
// until every generated reading is acked end to end. It returns the result
// and nil, or the result and an error wrapping ErrNotDrained after
// DrainTimeout, or ctx's error.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.defaults(); err != nil {
		return Result{}, fmt.Errorf("sim: %w", err)
	}
	log := cfg.Logger
	var (
		start, end time.Time
		interval   time.Duration
		hf         *HouseholdFile
		res        Result
	)
	switch cfg.Profile {
	case ProfileReplay:
		var err error
		if hf, err = ReadHouseholdFile(cfg.ReplayFile); err != nil {
			return Result{}, fmt.Errorf("sim: %w", err)
		}
		res.Missing = hf.Missing
		start, end, interval = hf.Start(), hf.End(), time.Minute
		if cfg.Duration > 0 && start.Add(cfg.Duration).Before(end) {
			end = start.Add(cfg.Duration)
		}
	default:
		start = cfg.Start
		if start.IsZero() {
			start = time.Now().Add(-cfg.Duration).Truncate(time.Minute)
		}
		start = start.UTC()
		end, interval = start.Add(cfg.Duration), cfg.Interval
	}
	res.SimStart, res.SimEnd = start, end

	var boot [16]byte
	_, _ = rand.Read(boot[:])
	clk := NewClock(start, cfg.Speed, hex.EncodeToString(boot[:]))
	var truth *TruthWriter
	if cfg.Truth != nil {
		truth = NewTruthWriter(cfg.Truth)
	}

	meters := make([]*meter, 0, cfg.Meters)
	closeAll := func() {
		for _, m := range meters {
			m.a.Close()
		}
	}
	for i := 1; i <= cfg.Meters; i++ {
		device := fmt.Sprintf("%s%04d", cfg.DevicePrefix, i)
		reg := sensor.NewRegistry()
		reg.Register(sensor.Driver{Name: "sim", Summary: "simulated meter channel", New: func(sc sensor.Config, _ sensor.Env) (sensor.Sensor, error) {
			if hf != nil {
				return newReplaySensor(hf, sc.Channel)
			}
			return newHouseholdSensor(NewHousehold(cfg.Seed, i), sc.Channel)
		}})
		opts := []agent.Option{
			agent.WithRegistry(reg), agent.WithClock(clk), agent.WithTicker(clk.Tickers(end)),
			agent.WithLogger(log), agent.WithVersion("gridedge-sim"),
			agent.WithBufferOptions(buffer.WithBadgerTuning(simBadger)),
			agent.WithPublishOptions(publish.WithBackoff(200*time.Millisecond, 5*time.Second)),
		}
		if truth != nil {
			opts = append(opts, agent.WithReadingHook(truth.Record))
		}
		if _, ok := cfg.Credentials[cfg.Site+"/"+device]; cfg.Credentials != nil && !ok {
			closeAll()
			return Result{}, fmt.Errorf("sim: credentials: no entry for %s/%s", cfg.Site, device)
		}
		a, err := agent.New(meterConfig(cfg, device, interval, hf != nil), opts...)
		if err != nil {
			closeAll()
			return Result{}, fmt.Errorf("sim: meter %s: %w", device, err)
		}
		meters = append(meters, &meter{device: device, a: a})
	}

	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	clk.Begin()
	for _, m := range meters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.a.Run(runCtx); err != nil {
				log.Error("meter stopped with an error", "device", m.device, "err", err)
			}
		}()
	}
	log.Info("simulation running", "meters", len(meters), "profile", cfg.Profile,
		"from", start.Format(time.RFC3339), "to", end.Format(time.RFC3339), "speed", cfg.Speed)

	var runErr error
	// Sampling ends when every meter's schedule has.
	for _, m := range meters {
		select {
		case <-m.a.SamplingDone():
		case <-ctx.Done():
			runErr = ctx.Err()
		}
		if runErr != nil {
			break
		}
	}
	if runErr == nil {
		drainCtx, cancel := context.WithTimeout(ctx, cfg.DrainTimeout)
		for _, m := range meters {
			if err := m.a.WaitDrained(drainCtx); err != nil {
				runErr = err
				break
			}
		}
		cancel()
	}
	for _, m := range meters {
		st := m.a.Stats()
		mr := MeterResult{Device: m.device, SeqEpoch: m.a.SeqEpoch(), Generated: st.Generated, Acked: st.Acked, Resent: st.Resent, Unacked: st.Buffered}
		res.Meters = append(res.Meters, mr)
		res.Generated += mr.Generated
		res.Unacked += mr.Unacked
	}
	stop()
	wg.Wait()
	if truth != nil {
		if err := truth.Flush(); err != nil {
			return res, fmt.Errorf("sim: truth file: %w", err)
		}
	}
	switch {
	case runErr == nil:
		return res, nil
	case ctx.Err() != nil:
		return res, fmt.Errorf("sim: %w", ctx.Err())
	default:
		return res, fmt.Errorf("%w: %s", ErrNotDrained, res.unackedSummary())
	}
}

func (r Result) unackedSummary() string {
	var parts []string
	ms := append([]MeterResult(nil), r.Meters...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].Device < ms[j].Device })
	for _, m := range ms {
		if m.Unacked > 0 {
			parts = append(parts, fmt.Sprintf("%s: %d", m.Device, m.Unacked))
		}
	}
	return fmt.Sprintf("%d unacked (%s)", r.Unacked, strings.Join(parts, ", "))
}

// simBadger shrinks each meter's Badger further than the gateway tuning so
// hundreds of meters fit in one process.
func simBadger(o badger.Options) badger.Options {
	return o.WithMemTableSize(1 << 20).WithBlockCacheSize(512 << 10).WithIndexCacheSize(512 << 10).
		WithValueLogFileSize(4 << 20).WithBaseTableSize(1 << 20)
}

func meterConfig(cfg Config, device string, interval time.Duration, replay bool) config.Config {
	dir := filepath.Join(cfg.DataDir, device)
	iv := config.Duration(interval)
	mainsQ := []string{"active_power", "energy"}
	if replay {
		mainsQ = []string{"active_power"}
	}
	c := config.Config{
		DeviceID: device, Site: cfg.Site, TimeZone: "Europe/Paris",
		StateDir: filepath.Join(dir, "state"),
		MQTT: config.MQTT{URL: cfg.MQTTURL, ClientID: "gridedge-" + cfg.Site + "-" + device,
			AckTimeout: config.Duration(cfg.AckTimeout)},
		Buffer:         config.Buffer{Dir: filepath.Join(dir, "buffer")},
		SampleInterval: iv,
		Channels: []config.Channel{
			{Name: "mains", Driver: "sim", Quantities: mainsQ},
			{Name: "sub1", Driver: "sim", Quantities: []string{"active_power"}},
			{Name: "sub2", Driver: "sim", Quantities: []string{"active_power"}},
			{Name: "sub3", Driver: "sim", Quantities: []string{"active_power"}},
		},
	}
	if secret, ok := cfg.Credentials[cfg.Site+"/"+device]; ok {
		user := cfg.Site + "/" + device
		c.MQTT.Username, c.MQTT.Password, c.MQTT.ClientID = user, secret, user
	}
	_ = os.MkdirAll(dir, 0o750)
	return c
}
