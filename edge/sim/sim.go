package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/gridedge/gridedge/edge/agent"
	"github.com/gridedge/gridedge/edge/buffer"
	"github.com/gridedge/gridedge/edge/clock"
	"github.com/gridedge/gridedge/edge/config"
	"github.com/gridedge/gridedge/edge/publish"
	"github.com/gridedge/gridedge/edge/sim/household"
	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/wire"
)

// MeterResult is one virtual meter's outcome.
type MeterResult struct {
	Device    string `json:"device"`
	SeqEpoch  uint64 `json:"seq_epoch"`
	Generated uint64 `json:"generated"`
	Acked     uint64 `json:"acked"`
	Resent    uint64 `json:"resent"`
	Unacked   int64  `json:"unacked"`
}

// Result is the outcome of a run.
type Result struct {
	// Meters are the meters that started (a ramp cut short by an interrupt
	// starts fewer than Config.Meters).
	Meters []MeterResult `json:"meters"`
	// Generated is the number of readings generated (and in the truth file).
	Generated uint64 `json:"generated"`
	Unacked   int64  `json:"unacked"`
	// Missing is the number of `?` values skipped by the replay.
	Missing int `json:"missing"`
	// SimStart and SimEnd bound the simulated time actually sampled: SimEnd
	// is the planned end, or where the clock stood when an interrupt
	// stopped sampling.
	SimStart time.Time `json:"sim_start"`
	SimEnd   time.Time `json:"sim_end"`
	// PlannedEnd is the end of the simulated range asked for.
	PlannedEnd time.Time `json:"planned_end"`
	// Interrupted is set when the context ended the run before its end.
	Interrupted bool `json:"interrupted"`
	// AckP50 and AckP99 are the end-to-end ack latency over the run.
	AckP50 time.Duration `json:"ack_p50_ns"`
	AckP99 time.Duration `json:"ack_p99_ns"`
}

// ErrNotDrained is returned (wrapped) when readings were still unacked at
// the drain timeout.
var ErrNotDrained = errors.New("sim: readings not acknowledged before the drain timeout")

// meter is one virtual gateway.
type meter struct {
	index  int
	device string
	// born is when the meter starts, in simulated time since the run's start.
	born   time.Duration
	clk    *meterClock
	state  *meterState
	faults meterFaults
	link   *link
	lat    ackQueue
	rec    meterRecord
	a      *agent.Agent
	done   chan struct{} // closed when the agent's Run has returned
}

// run is one simulation's shared state.
type run struct {
	cfg        Config
	clk        *Clock
	start, end time.Time
	interval   time.Duration
	hf         *HouseholdFile
	truth      *TruthWriter
	rec        *Recorder
	shared     *buffer.Shared
	fl         fleet
}

// Run runs the simulation: it starts Meters agents on a shared simulated
// clock (all at once, or in the steps of Ramp), samples until Duration of
// simulated time has passed, then waits until every generated reading is
// acked end to end. It returns the result and nil, or the result and an
// error wrapping ErrNotDrained after DrainTimeout, or ctx's error (the
// result then says how far the run got).
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.defaults(); err != nil {
		return Result{}, fmt.Errorf("sim: %w", err)
	}
	r := &run{cfg: cfg}
	var res Result
	switch cfg.Profile {
	case ProfileReplay:
		var err error
		if r.hf, err = ReadHouseholdFile(cfg.ReplayFile); err != nil {
			return Result{}, fmt.Errorf("sim: %w", err)
		}
		res.Missing = r.hf.Missing
		r.start, r.end, r.interval = r.hf.Start(), r.hf.End(), time.Minute
		if cfg.Duration > 0 && r.start.Add(cfg.Duration).Before(r.end) {
			r.end = r.start.Add(cfg.Duration)
		}
	default:
		now := time.Now()
		switch {
		case !cfg.Start.IsZero():
			r.start = cfg.Start
		case cfg.Backfill > 0:
			r.start = now.Add(-cfg.Backfill).Truncate(cfg.Interval)
		case cfg.Speed == 1 || cfg.Duration == 0:
			// Real time: the meters sample the present.
			r.start = now.Truncate(cfg.Interval).Add(cfg.Interval)
		default:
			r.start = now.Add(-cfg.Duration).Truncate(time.Minute)
		}
		r.start = r.start.UTC()
		r.end, r.interval = r.start.Add(cfg.Duration), cfg.Interval
		if cfg.Duration == 0 {
			r.end = noEnd
		}
	}
	// A data directory that already sampled continues after it.
	states, err := r.resume(cfg.Profile == ProfileHousehold && cfg.Start.IsZero())
	if err != nil {
		return Result{}, fmt.Errorf("sim: %w", err)
	}
	res.SimStart, res.SimEnd, res.PlannedEnd = r.start, r.end, r.end

	var boot [16]byte
	_, _ = rand.Read(boot[:])
	r.clk = NewClock(r.start, cfg.Speed, hex.EncodeToString(boot[:]))
	if cfg.Truth != nil {
		r.truth = NewTruthWriter(cfg.Truth)
	}
	if cfg.Record != nil {
		r.rec = NewRecorder(cfg.Record, cfg.Site)
	}
	meters, err := r.plan()
	if err != nil {
		return Result{}, fmt.Errorf("sim: %w", err)
	}
	for i, m := range meters {
		m.state = states[i]
		m.clk.state = states[i]
	}
	if cfg.Buffer != BufferDisk {
		mode := buffer.SharedJournal
		if cfg.Buffer == BufferMemory {
			mode = buffer.SharedMemory
		}
		if r.shared, err = buffer.OpenShared(filepath.Join(cfg.DataDir, "shared"), buffer.WithSharedMode(mode),
			buffer.WithSharedLogger(cfg.Logger)); err != nil {
			return Result{}, fmt.Errorf("sim: %w", err)
		}
	}

	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	launch := func(ms []*meter) {
		for _, m := range ms {
			m.done = make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(m.done)
				if err := m.a.Run(runCtx); err != nil {
					cfg.Logger.Error("meter stopped with an error", "device", m.device, "err", err)
				}
			}()
			r.fl.started.Add(1)
		}
	}
	var started []*meter
	var runErr error
	if cfg.Ramp.Step == 0 {
		// Everything is ready before the clock starts: no meter misses its
		// first sample.
		if runErr = r.build(ctx, meters); runErr == nil {
			r.clk.Begin()
			launch(meters)
			started = meters
		}
	} else {
		r.clk.Begin()
	}
	began := time.Now()
	var events []faultEvent
	for _, m := range meters {
		for _, s := range m.faults.down {
			events = append(events, faultEvent{s.from, m.link})
		}
		for _, at := range m.faults.drops {
			events = append(events, faultEvent{at, m.link})
		}
	}
	aux, stopAux := context.WithCancel(context.Background())
	var auxWG sync.WaitGroup
	auxWG.Add(1)
	go func() { defer auxWG.Done(); runFaults(aux, r.clk, events) }()
	if cfg.Progress != nil {
		auxWG.Add(1)
		go func() { defer auxWG.Done(); r.report(aux, began) }()
	}
	cfg.Logger.Info("simulation running", "meters", len(meters), "profile", cfg.Profile, "buffer", cfg.Buffer,
		"from", r.start.Format(time.RFC3339), "to", r.end.Format(time.RFC3339), "speed", cfg.Speed, "ramp", cfg.Ramp.String())

	if cfg.Ramp.Step > 0 && runErr == nil {
		started, runErr = r.ramp(ctx, meters, began, launch)
	}
	// Sampling ends when every meter's schedule has.
	var sampledTo time.Duration
	if runErr == nil {
	wait:
		for _, m := range started {
			select {
			case <-m.a.SamplingDone():
			case <-ctx.Done():
				runErr = ctx.Err()
				break wait
			}
		}
	}
	if runErr != nil {
		// Stop sampling before counting, so the result (and the truth
		// file) hold the same readings.
		for _, m := range started {
			m.a.StopSampling()
		}
		for _, m := range started {
			<-m.a.SamplingDone()
		}
	}
	sampledTo = min(r.clk.Elapsed(), r.end.Sub(r.start))
	if runErr == nil {
		drainCtx, cancel := context.WithTimeout(ctx, cfg.DrainTimeout)
		for _, m := range started {
			if err := m.a.WaitDrained(drainCtx); err != nil {
				runErr = err
				break
			}
		}
		cancel()
	}
	for _, m := range started {
		st := m.a.Stats()
		mr := MeterResult{Device: m.device, SeqEpoch: m.a.SeqEpoch(), Generated: st.Generated, Acked: st.Acked, Resent: st.Resent, Unacked: st.Buffered}
		res.Meters = append(res.Meters, mr)
		res.Generated += mr.Generated
		res.Unacked += mr.Unacked
	}
	_, q := quantiles(r.fl.ackLat.snapshot(), 0.5, 0.99)
	res.AckP50, res.AckP99 = q[0], q[1]
	if ctx.Err() != nil {
		res.Interrupted = true
		res.SimEnd = r.start.Add(sampledTo)
	}
	stop()
	wg.Wait()
	// Meters built but never launched (an interrupted ramp or build).
	for _, m := range meters {
		if m.a != nil && m.done == nil {
			m.a.Close()
		}
	}
	var errs []error
	for _, m := range started {
		if err := m.state.close(); err != nil {
			errs = append(errs, fmt.Errorf("sim: meter %s: %w", m.device, err))
		}
	}
	stopAux()
	auxWG.Wait()
	if cfg.Progress != nil {
		p, _ := r.fl.progress(r.clk, began, Progress{}, nil)
		// The rates and latencies are per interval: none for the last word.
		p.GeneratedPerSec, p.AckedPerSec, p.Final = 0, 0, true
		cfg.Progress(p)
	}
	if r.shared != nil {
		if err := r.shared.Close(); err != nil {
			errs = append(errs, fmt.Errorf("sim: %w", err))
		}
	}
	if r.truth != nil {
		if err := r.truth.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("sim: truth file: %w", err))
		}
	}
	if r.rec != nil {
		for _, m := range started {
			m.rec.flush(r.rec)
		}
		if err := r.rec.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("sim: recording: %w", err))
		}
	}
	switch {
	case runErr == nil:
	case ctx.Err() != nil:
		errs = append([]error{fmt.Errorf("sim: %w", ctx.Err())}, errs...)
	case errors.Is(runErr, context.DeadlineExceeded):
		errs = append([]error{fmt.Errorf("%w: %s", ErrNotDrained, res.unackedSummary())}, errs...)
	default:
		errs = append([]error{fmt.Errorf("sim: %w", runErr)}, errs...)
	}
	return res, errors.Join(errs...)
}

// plan names the meters and decides their start, faults and source
// address; it builds no agent yet.
func (r *run) plan() ([]*meter, error) {
	cfg := r.cfg
	addrs, err := sourceAddrs(cfg)
	if err != nil {
		return nil, err
	}
	meters := make([]*meter, cfg.Meters)
	for i := range meters {
		m := &meter{index: i + 1, device: fmt.Sprintf("%s%04d", cfg.DevicePrefix, i+1)}
		if err := wire.ValidateDeviceID(m.device); err != nil {
			return nil, fmt.Errorf("device prefix: %w", err)
		}
		if cfg.Credentials != nil {
			if _, ok := cfg.Credentials[cfg.Site+"/"+m.device]; !ok {
				return nil, fmt.Errorf("credentials: no entry for %s/%s", cfg.Site, m.device)
			}
		}
		if cfg.Ramp.Step > 0 {
			m.born = time.Duration(float64(time.Duration(i/cfg.Ramp.Step)*cfg.Ramp.Every) * cfg.Speed)
		}
		m.faults = planFaults(cfg.Faults, cfg.Seed, m.index, m.device, m.born, r.end.Sub(r.start))
		m.clk = &meterClock{c: r.clk, syncAt: m.faults.syncAt}
		m.link = &link{c: r.clk, faults: &m.faults, open: &r.fl.connected}
		if len(addrs) > 0 {
			m.link.local = addrs[i%len(addrs)]
		}
		meters[i] = m
	}
	return meters, nil
}

// build creates the agents of ms, several at a time (opening a buffer
// writes its sequence state durably).
func (r *run) build(ctx context.Context, ms []*meter) error {
	const workers = 16
	var (
		mu    sync.Mutex
		first error
		next  = make(chan *meter)
		wg    sync.WaitGroup
	)
	for range min(workers, len(ms)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range next {
				a, err := r.newAgent(m)
				mu.Lock()
				if err != nil && first == nil {
					first = fmt.Errorf("meter %s: %w", m.device, err)
				}
				mu.Unlock()
				m.a = a
			}
		}()
	}
feed:
	for _, m := range ms {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		select {
		case next <- m:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	if first != nil {
		for _, m := range ms {
			if m.a != nil {
				m.a.Close()
				m.a = nil
			}
		}
	}
	return first
}

// ramp builds and launches the meters in steps, one step every Ramp.Every
// of real time, and returns those launched.
func (r *run) ramp(ctx context.Context, meters []*meter, began time.Time, launch func([]*meter)) ([]*meter, error) {
	step := r.cfg.Ramp.Step
	for i := 0; i < len(meters); i += step {
		wave := meters[i:min(i+step, len(meters))]
		if wait := time.Until(began.Add(time.Duration(i/step) * r.cfg.Ramp.Every)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return meters[:i], ctx.Err()
			case <-t.C:
			}
		}
		if err := r.build(ctx, wave); err != nil {
			return meters[:i], err
		}
		launch(wave)
	}
	return meters, nil
}

// newAgent builds meter m's agent.
func (r *run) newAgent(m *meter) (*agent.Agent, error) {
	cfg := r.cfg
	at := func(st clock.Stamp) time.Time { return time.Unix(0, r.clk.trueWall(st.MonoNs)) }
	reg := sensor.NewRegistry()
	if !m.state.found {
		// Recorded before the agent's own state, so a data directory with
		// the one never lacks the other.
		if err := m.state.st.saveInitial(m.state.dir); err != nil {
			return nil, fmt.Errorf("save simulation state: %w", err)
		}
	}
	model := household.New(cfg.Seed, m.index)
	// The counter continues from the earlier run's, counting what the
	// meter's loads used while the simulator was not running.
	counter := model.ContinueCounter(m.state.st.Counter, r.start.Add(m.born).Add(-r.interval), r.interval)
	reg.Register(sensor.Driver{Name: "sim", Summary: "simulated meter channel", New: func(sc sensor.Config, _ sensor.Env) (sensor.Sensor, error) {
		if r.hf != nil {
			return newReplaySensor(r.hf, sc.Channel, at)
		}
		return household.NewSensor(model, sc.Channel, at, household.WithCounter(counter, m.state.counter))
	}})
	bufOpts := []buffer.Option{buffer.WithBadgerTuning(simBadger)}
	if r.shared != nil {
		bufOpts = []buffer.Option{buffer.WithShared(r.shared, m.device)}
	}
	opts := []agent.Option{
		agent.WithRegistry(reg), agent.WithClock(m.clk),
		agent.WithTicker(m.clk.tickers(m.born, r.end, cfg.Jitter, cfg.ReversedPairs, household.Mix(uint64(cfg.Seed)^uint64(m.index)<<20))),
		agent.WithLogger(cfg.Logger), agent.WithVersion("gridedge-sim"),
		agent.WithBufferOptions(bufOpts...),
		agent.WithPublishOptions(
			publish.WithBackoff(200*time.Millisecond, 5*time.Second),
			publish.WithDialer(m.link.dial), publish.WithLightClient(),
			publish.WithAckHook(func(n int) {
				r.fl.acked.Add(uint64(n))
				m.lat.pop(n, time.Now().UnixNano(), &r.fl.ackLat)
			})),
		agent.WithReadingHook(func(device string, epoch uint64, rd *wire.Reading) { r.generated(m, device, epoch, rd) }),
	}
	return agent.New(r.meterConfig(m), opts...)
}

// generated accounts for one reading a meter buffered.
func (r *run) generated(m *meter, device string, epoch uint64, rd *wire.Reading) {
	m.lat.push(time.Now().UnixNano())
	r.fl.generated.Add(1)
	if r.truth == nil && r.rec == nil {
		return
	}
	// The truth and the recording carry the true time, also for readings a
	// clockless meter stamped near 1970 (its agent re-stamps them before
	// sending).
	tr := &wire.Reading{Seq: rd.Seq, Channel: rd.Channel, Quantity: rd.Quantity, Value: rd.Value, WallNs: rd.WallNs,
		MonoNs: rd.MonoNs, TimeQuality: rd.TimeQuality, TimeErrorNs: rd.TimeErrorNs}
	if rd.TimeQuality == wire.TimeQuality_TIME_QUALITY_ESTIMATED {
		tr.WallNs, tr.TimeQuality, tr.TimeErrorNs = r.clk.trueWall(rd.MonoNs), wire.TimeQuality_TIME_QUALITY_SYNCED, 0
	}
	if r.truth != nil {
		r.truth.Record(device, epoch, tr)
	}
	if r.rec != nil {
		m.rec.add(r.rec, device, r.clk.bootID, epoch, tr)
	}
}

// report calls the progress function every interval until ctx ends.
func (r *run) report(ctx context.Context, began time.Time) {
	t := time.NewTicker(r.cfg.ProgressInterval)
	defer t.Stop()
	var prev Progress
	var counts []uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			prev, counts = r.fl.progress(r.clk, began, prev, counts)
			r.cfg.Progress(prev)
		}
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
	if len(parts) > 20 {
		parts = append(parts[:20], fmt.Sprintf("and %d more meters", len(parts)-20))
	}
	return fmt.Sprintf("%d unacked (%s)", r.Unacked, strings.Join(parts, ", "))
}

// simBadger shrinks each meter's Badger further than the gateway tuning so
// hundreds of meters fit in one process.
func simBadger(o badger.Options) badger.Options {
	return o.WithMemTableSize(1 << 20).WithBlockCacheSize(512 << 10).WithIndexCacheSize(512 << 10).
		WithValueLogFileSize(4 << 20).WithBaseTableSize(1 << 20)
}

// simStatusInterval is how often a virtual meter writes its status file
// (and, six times that, republishes its retained status): rarely, so
// thousands of meters do not spend the machine on it.
const simStatusInterval = 10 * time.Minute

func (r *run) meterConfig(m *meter) config.Config {
	cfg := r.cfg
	dir := filepath.Join(cfg.DataDir, m.device)
	iv := config.Duration(r.interval)
	mainsQ := []string{"active_power", "energy"}
	if r.hf != nil {
		mainsQ = []string{"active_power"}
	}
	c := config.Config{
		DeviceID: m.device, Site: cfg.Site, TimeZone: "Europe/Paris",
		StateDir:       filepath.Join(dir, "state"),
		StatusInterval: config.Duration(simStatusInterval),
		MQTT: config.MQTT{URL: cfg.MQTTURL, ClientID: "gridedge-" + cfg.Site + "-" + m.device,
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
	if r.shared != nil {
		// The shared store holds the readings; the directory is only created.
		c.Buffer.Dir = filepath.Join(cfg.DataDir, "buffers")
	}
	if cfg.States {
		for _, a := range household.Appliances() {
			c.Channels = append(c.Channels, config.Channel{Name: a, Driver: "sim", Quantities: []string{"state"}})
		}
	}
	if secret, ok := cfg.Credentials[cfg.Site+"/"+m.device]; ok {
		user := cfg.Site + "/" + m.device
		c.MQTT.Username, c.MQTT.Password, c.MQTT.ClientID = user, secret, user
	}
	return c
}
