package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridedge/gridedge/edge/buffer"
	"github.com/gridedge/gridedge/edge/clock"
	"github.com/gridedge/gridedge/edge/config"
	"github.com/gridedge/gridedge/edge/publish"
	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/wire"
)

// Stats are the agent's counters since New.
type Stats struct {
	Generated    uint64 // readings appended to the buffer
	Buffered     int64  // readings in the buffer now (not yet acked)
	Sent         uint64 // readings published for the first time
	Resent       uint64 // readings published again after an ack timeout
	Acked        uint64 // readings the collector acked (deleted)
	SenseErrors  uint64 // failed Sense calls, all channels
	AppendErrors uint64 // readings lost because the buffer refused them
	Dropped      uint64 // readings dropped to stay within the disk quota
	Summarised   uint64 // readings thinned to per-minute summaries
	// ChannelErrors counts failed Sense calls (and invalid values) per channel.
	ChannelErrors map[string]uint64
	Connected     bool
}

// ReadingHook sees every reading after it was appended (so it has its
// sequence number). It must not modify r and must be fast.
type ReadingHook func(device string, seqEpoch uint64, r *wire.Reading)

// Option adjusts an Agent.
type Option func(*settings)

type settings struct {
	registry    *sensor.Registry
	src         clock.Source
	tickers     TickerFactory
	log         *slog.Logger
	hook        ReadingHook
	env         sensor.Env
	version     string
	bufferOpts  []buffer.Option
	publishOpts []publish.Option
}

// WithRegistry sets the sensor drivers channels may name.
func WithRegistry(r *sensor.Registry) Option { return func(s *settings) { s.registry = r } }

// WithClock sets the time source (default: clock.NewSystem). If the source
// has a Run(ctx) error method (clock.System does), the agent's Run runs it.
func WithClock(src clock.Source) Option { return func(s *settings) { s.src = src } }

// WithTicker sets the sampling schedule (default: SystemTicker).
func WithTicker(f TickerFactory) Option { return func(s *settings) { s.tickers = f } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.log = l } }

// WithReadingHook calls h for every reading appended.
func WithReadingHook(h ReadingHook) Option { return func(s *settings) { s.hook = h } }

// WithSensorEnv sets the buses and helpers drivers get; StateDir and Logger
// are filled in per channel.
func WithSensorEnv(env sensor.Env) Option { return func(s *settings) { s.env = env } }

// WithVersion sets the agent version reported in batches and status.
func WithVersion(v string) Option { return func(s *settings) { s.version = v } }

// WithBufferOptions passes extra options to buffer.Open.
func WithBufferOptions(o ...buffer.Option) Option {
	return func(s *settings) { s.bufferOpts = append(s.bufferOpts, o...) }
}

// WithPublishOptions passes extra options to publish.New.
func WithPublishOptions(o ...publish.Option) Option {
	return func(s *settings) { s.publishOpts = append(s.publishOpts, o...) }
}

// channel is one configured channel and its counters.
type channel struct {
	cfg      sensor.Config
	interval time.Duration
	sensor   sensor.Sensor
	// instant channels are sensed on their group's goroutine
	// (sensor.Instant); the others on one goroutine each.
	instant bool
	errors  atomic.Uint64
	// agg summarises samples when the channel aggregates; nil otherwise.
	agg *aggregator
	// beat is the unix ns of the sampler's last round; done is set when its
	// schedule ended. Healthy reads both.
	beat atomic.Int64
	done atomic.Bool
}

// Agent runs the pipeline of one gateway (or one simulated meter).
type Agent struct {
	cfg      config.Config
	o        settings
	log      *slog.Logger
	src      clock.Source
	buf      *buffer.Buffer
	pub      *publish.Publisher
	channels []*channel
	// groups are the channels by schedule (interval), in configuration order.
	groups []*group

	// oldestSeq is the sequence number of the oldest buffered reading last
	// seen (oldestUnsent starts its search there).
	oldestSeq      atomic.Uint64
	generated      atomic.Uint64
	senseErrors    atomic.Uint64
	appendErrors   atomic.Uint64
	appendLoggedAt atomic.Int64

	samplingCtx  context.Context
	stopSampling context.CancelFunc
	samplersDone chan struct{}
	samplersOnce sync.Once

	runOnce     sync.Once
	closeOnce   sync.Once
	closeErr    error
	metricsAddr atomic.Value // string
}

// New validates cfg, opens the buffer and builds every channel's sensor. On
// success the caller must Run the agent or Close it.
func New(cfg config.Config, opts ...Option) (*Agent, error) {
	o := settings{log: slog.Default(), version: "dev"}
	for _, opt := range opts {
		opt(&o)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("agent: config: %w", err)
	}
	if o.registry == nil {
		o.registry = sensor.NewRegistry()
	}
	log := o.log.With("device", cfg.DeviceID)
	src := o.src
	if src == nil {
		sys, err := clock.NewSystem(clock.WithLogger(log))
		if err != nil {
			return nil, fmt.Errorf("agent: clock: %w", err)
		}
		src = sys
	}
	if o.tickers == nil {
		o.tickers = SystemTicker(src)
	}
	a := &Agent{cfg: cfg, o: o, log: log, src: src, samplersDone: make(chan struct{})}
	a.samplingCtx, a.stopSampling = context.WithCancel(context.Background())

	bufOpts := append([]buffer.Option{
		buffer.WithLogger(log),
		buffer.WithSyncInterval(cfg.Buffer.SyncInterval.D()),
		buffer.WithQuota(cfg.Buffer.QuotaBytes),
		buffer.WithMinFree(cfg.Buffer.MinFreeBytes),
		buffer.WithBackend(buffer.Backend(cfg.Buffer.Backend)),
		// A buffer corrupted by a power cut must not stop the gateway metering.
		buffer.WithQuarantine(true),
	}, o.bufferOpts...)
	buf, err := buffer.Open(cfg.Buffer.Dir, cfg.StateDir, bufOpts...)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a.buf = buf

	for i, sc := range cfg.SensorConfigs() {
		env := o.env
		env.StateDir = filepath.Join(cfg.StateDir, "channels", sc.Channel)
		env.Logger = log.With("channel", sc.Channel)
		if env.Now == nil {
			env.Now = time.Now
		}
		if err := os.MkdirAll(env.StateDir, 0o750); err != nil {
			a.closeSensors()
			buf.Close()
			return nil, fmt.Errorf("agent: channels[%d]: %w", i, err)
		}
		s, err := o.registry.New(sc, env)
		if err != nil {
			a.closeSensors()
			buf.Close()
			return nil, fmt.Errorf("agent: channels[%d]: %w", i, err)
		}
		iv := cfg.Channels[i].Every()
		ch := &channel{cfg: sc, interval: iv, sensor: s, instant: sensor.IsInstant(s)}
		if every := cfg.Channels[i].AggregateEvery(); every > 0 {
			integrate := slices.Contains(sc.Quantities, wire.Quantity_QUANTITY_ENERGY)
			if ch.agg, err = newAggregator(sc.Channel, every, integrate, env.StateDir); err != nil {
				s.Close()
				a.closeSensors()
				buf.Close()
				return nil, fmt.Errorf("agent: channels[%d]: %w", i, err)
			}
		}
		a.channels = append(a.channels, ch)
	}
	a.groups = groupBySchedule(a.channels, o.tickers)

	pub, err := publish.New(publish.Config{
		Site: cfg.Site, DeviceID: cfg.DeviceID, URL: cfg.MQTT.URL, ClientID: cfg.MQTT.ClientID,
		Username: cfg.MQTT.Username, Password: cfg.MQTT.Password,
		CAFile: cfg.MQTT.CAFile, CertFile: cfg.MQTT.CertFile, KeyFile: cfg.MQTT.KeyFile,
		KeepAlive: cfg.MQTT.KeepAlive.D(), AckTimeout: cfg.MQTT.AckTimeout.D(),
		MaxBatchReadings: cfg.MQTT.MaxBatchReadings, MaxBatchBytes: cfg.MQTT.MaxBatchBytes,
		ReplayRate: cfg.MQTT.ReplayRate,
	}, buf, a.src, append([]publish.Option{
		publish.WithLogger(log), publish.WithAgentVersion(o.version),
		publish.WithStatus(a.statusMessage, cfg.StatusInterval.D()*6),
	}, o.publishOpts...)...)
	if err != nil {
		a.closeSensors()
		buf.Close()
		return nil, fmt.Errorf("agent: %w", err)
	}
	a.pub = pub
	return a, nil
}

// SeqEpoch is the sequence epoch of readings this agent generates.
func (a *Agent) SeqEpoch() uint64 { return a.buf.SeqEpoch() }

// DeviceID is the configured device id.
func (a *Agent) DeviceID() string { return a.cfg.DeviceID }

// Buffer exposes the agent's buffer (for status tools and tests).
func (a *Agent) Buffer() *buffer.Buffer { return a.buf }

// Run samples, buffers and publishes until ctx is done, then closes the
// agent. Sampling may end earlier (StopSampling, or every ticker's schedule
// ended) while publishing goes on. Run may be called once.
func (a *Agent) Run(ctx context.Context) error {
	err := errors.New("agent: Run called twice")
	a.runOnce.Do(func() { err = a.run(ctx) })
	return err
}

func (a *Agent) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var pubErr error
	if a.cfg.MetricsAddr != "" {
		serve, err := a.serveMetrics(ctx, a.cfg.MetricsAddr)
		if err != nil {
			a.markSamplingDone() // nothing will sample: do not leave waiters hanging
			return errors.Join(fmt.Errorf("agent: %w", err), a.Close())
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := serve(); err != nil {
				a.log.Error("metrics server stopped", "err", err)
			}
		}()
	}
	status := a.startStatus()
	if r, ok := a.src.(interface{ Run(context.Context) error }); ok {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Run(ctx); err != nil && ctx.Err() == nil {
				a.log.Error("clock stopped", "err", err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := a.pub.Run(ctx); err != nil {
			pubErr = err
			cancel()
		}
	}()

	// Sampling stops when ctx ends or StopSampling is called; sampling is
	// done when the last group returns. Neither needs a goroutine of its
	// own.
	sampleCtx, stopSamplers := context.WithCancel(a.samplingCtx)
	unwatch := context.AfterFunc(ctx, stopSamplers)
	defer unwatch()
	var samplers sync.WaitGroup
	var running atomic.Int32
	running.Store(int32(len(a.groups)))
	if len(a.groups) == 0 {
		a.markSamplingDone()
	}
	for _, g := range a.groups {
		samplers.Add(1)
		for _, ch := range g.channels {
			ch.beat.Store(time.Now().UnixNano())
		}
		go func() {
			defer samplers.Done()
			a.sampleGroup(sampleCtx, g)
			if running.Add(-1) == 0 {
				a.markSamplingDone()
			}
		}()
	}

	<-ctx.Done()
	stopSamplers()
	samplers.Wait()
	status.stop() // and writes the file once more, so a stopped agent's file says so
	wg.Wait()
	closeErr := a.Close()
	return errors.Join(pubErr, closeErr)
}

func (a *Agent) markSamplingDone() { a.samplersOnce.Do(func() { close(a.samplersDone) }) }

// SamplingDone is closed once every channel has stopped sampling (its
// schedule ended, StopSampling, or Run's context ended).
func (a *Agent) SamplingDone() <-chan struct{} { return a.samplersDone }

// StopSampling ends sampling on every channel; publishing continues until
// Run's context is done.
func (a *Agent) StopSampling() { a.stopSampling() }

// WaitDrained returns nil once sampling has ended and every reading
// generated has been acked by the collector (the buffer is empty), or
// ctx.Err().
func (a *Agent) WaitDrained(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-a.samplersDone:
			if a.buf.Len() == 0 {
				return nil
			}
		default:
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent %s: %d readings not acked: %w", a.cfg.DeviceID, a.buf.Len(), ctx.Err())
		case <-t.C:
		}
	}
}

// Stats returns the counters.
func (a *Agent) Stats() Stats {
	ps := a.pub.Stats()
	bs := a.buf.Stats()
	st := Stats{
		Generated: a.generated.Load(), Buffered: bs.Len, Sent: ps.Sent, Resent: ps.Resent, Acked: ps.Acked,
		SenseErrors: a.senseErrors.Load(), AppendErrors: a.appendErrors.Load(),
		Dropped: bs.Dropped, Summarised: bs.Summarised, Connected: ps.Connected,
		ChannelErrors: make(map[string]uint64, len(a.channels)),
	}
	for _, ch := range a.channels {
		st.ChannelErrors[ch.cfg.Channel] = ch.errors.Load()
	}
	return st
}

// statusMessage is the retained status the publisher sends.
func (a *Agent) statusMessage() *wire.Status {
	now := a.src.Now()
	bs := a.buf.Stats()
	st := &wire.Status{
		BootId: now.BootID, WallNs: now.WallNs, ClockQuality: a.src.Quality(),
		BufferedReadings: uint64(max(bs.Len, 0)), DroppedReadings: bs.Dropped, SummarisedReadings: bs.Summarised,
		TimeZone: a.cfg.TimeZone, ChannelErrors: map[string]uint64{},
	}
	if rec, ok, err := a.oldestUnsent(); err == nil && ok {
		st.OldestUnsentWallNs = rec.Reading.WallNs
	}
	for _, ch := range a.channels {
		st.ChannelErrors[ch.cfg.Channel] = ch.errors.Load()
	}
	return st
}

// Channels lists the channel names in configuration order.
func (a *Agent) Channels() []string {
	out := make([]string, len(a.channels))
	for i, ch := range a.channels {
		out[i] = ch.cfg.Channel
	}
	return out
}

func (a *Agent) closeSensors() error {
	var errs []error
	for _, ch := range a.channels {
		if err := ch.sensor.Close(); err != nil {
			errs = append(errs, fmt.Errorf("channel %s: close sensor: %w", ch.cfg.Channel, err))
		}
	}
	return errors.Join(errs...)
}

// Close releases the sensors and closes the buffer (syncing it). Run calls
// it on return; call it directly only for an agent that never ran.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		a.stopSampling()
		a.closeErr = errors.Join(a.closeSensors(), a.buf.Close())
	})
	return a.closeErr
}
