package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"

	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/semaphore"

	"github.com/gridedge/gridedge/cloud/analytics"
	"github.com/gridedge/gridedge/cloud/api"
	"github.com/gridedge/gridedge/cloud/apitoken"
	"github.com/gridedge/gridedge/cloud/broker"
	"github.com/gridedge/gridedge/cloud/diskguard"
	"github.com/gridedge/gridedge/cloud/intake"
	"github.com/gridedge/gridedge/cloud/mqttclient"
	"github.com/gridedge/gridedge/cloud/readlog/local"
	"github.com/gridedge/gridedge/cloud/sink/postgres"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/topic"
	"github.com/gridedge/gridedge/shared/wire"
)

// Option changes a Collector.
type Option func(*Collector)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *Collector) { c.log = l } }

// WithClock replaces time.Now as the source of receive times.
func WithClock(now func() time.Time) Option { return func(c *Collector) { c.now = now } }

// Collector is one running collector process.
type Collector struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	reg     *prometheus.Registry
	store   *store.Store
	rlog    *local.Log
	disk    *diskguard.Guard
	intake  *intake.Intake
	workers *workers
	// analytics derives bands and forecasts (nil when disabled).
	analytics     *analytics.Runner
	analyticsOpts []analytics.Option
	// pg is the PostgreSQL sink, nil unless configured.
	pg *postgres.Sink
	// pgReader serves the API from PostgreSQL (postgres.serve_api).
	pgReader *postgres.Reader
	broker   *broker.Broker
	httpLn   net.Listener
	httpSrv  *http.Server
	// MQTT connection: the broker URL without credentials (safe to log),
	// the credentials, the client id and what keeps the client connected.
	mqttURL  string
	mqttCred mqttclient.Credentials
	clientID string
	keeper   *mqttclient.Keeper

	inflight chan *inflight
	// inflightBytes bounds the payload bytes of messages in inflight.
	inflightBytes *semaphore.Weighted
	acks          chan ackJob
	ready         chan struct{}
	readyOnce     sync.Once
	connected     atomic.Bool
	running       atomic.Bool

	// handling guards the ack channel and the store against being closed
	// under a message handler.
	handling sync.RWMutex
	closed   bool

	closeOnce sync.Once
	closeErr  error

	m struct {
		acks       *prometheus.CounterVec
		connected  prometheus.Gauge
		connLost   prometheus.Counter
		dispatched *prometheus.CounterVec
	}
}

type ackJob struct {
	site string
	ack  *wire.Ack
}

// New validates cfg, opens the store, starts the embedded broker when
// configured and binds the HTTP listener. Call Run to start ingesting, or
// Close to release everything without running.
func New(cfg Config, opts ...Option) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("collector: config: %w", err)
	}
	c := &Collector{cfg: cfg, log: slog.Default(), now: time.Now, reg: prometheus.NewRegistry(), ready: make(chan struct{})}
	for _, o := range opts {
		o(c)
	}
	c.acks = make(chan ackJob, cfg.AckQueue)
	c.inflight = make(chan *inflight, maxInflight)
	c.inflightBytes = semaphore.NewWeighted(cfg.IntakeInflightBytes)
	pipes := collectorPipelines(cfg)
	if err := store.RefuseOldFormat(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, "store"), cfg.storeOptions(c.log)...)
	if err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	c.store = st
	c.rlog, err = openLog(cfg, c.log)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("collector: %w", err)
	}
	c.disk = diskguard.New(cfg.DataDir, cfg.MinFreeBytes, diskguard.WithLogger(c.log))
	c.workers = newWorkers(cfg, pipes, c.rlog, st, c.disk.CanWrite, c.now, c.log)
	if c.analytics, err = newAnalytics(cfg, st, c.rlog.Partitions(), c.now, c.log, c.analyticsOpts); err != nil {
		c.closeResources()
		return nil, err
	}
	if c.pg, err = newPostgresSink(cfg, st, c.rlog.Partitions(), c.log); err != nil {
		c.closeResources()
		return nil, fmt.Errorf("collector: %w", err)
	}
	if err := c.registerMetrics(); err != nil {
		c.closeResources()
		return nil, err
	}
	c.intake, err = intake.New(c.rlog, st, c.reg, intake.WithLogger(c.log), intake.WithSpace(c.disk))
	if err != nil {
		c.closeResources()
		return nil, fmt.Errorf("collector: %w", err)
	}
	if err := c.mqttIdentity(); err != nil {
		c.closeResources()
		return nil, fmt.Errorf("collector: %w", err)
	}
	if cfg.EmbeddedBroker != "" {
		opts, err := cfg.Broker.Options(cfg.DataDir, c.log)
		if err == nil {
			c.broker, err = broker.Start(cfg.EmbeddedBroker, opts...)
		}
		if err != nil {
			c.closeResources()
			return nil, fmt.Errorf("collector: embedded_broker: %w", err)
		}
		if c.mqttURL == "" {
			c.mqttURL = c.broker.URL()
		}
		if !c.mqttCred.Set() {
			// The collector's own identity on its embedded broker.
			c.mqttCred.Username, c.mqttCred.Password = c.broker.CollectorCredentials()
		}
	}
	apiOpts, err := apiAccess(cfg, c.log)
	if err != nil {
		c.closeResources()
		return nil, fmt.Errorf("collector: %w", err)
	}
	pgAPI, reader, err := postgresAPI(cfg)
	if err != nil {
		c.closeResources()
		return nil, fmt.Errorf("collector: %w", err)
	}
	c.pgReader = reader
	apiOpts = append(apiOpts, pgAPI...)
	c.httpLn, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		c.closeResources()
		return nil, fmt.Errorf("collector: http_addr %s: %w", cfg.HTTPAddr, err)
	}
	c.httpSrv = apiServer(cfg, st, pipes, c.reg, c.health, c.log, apiOpts)
	return c, nil
}

// apiAccess loads the API tokens, and says loudly when the API is served
// to the network without them.
func apiAccess(cfg Config, log *slog.Logger) ([]api.Option, error) {
	host, _, _ := net.SplitHostPort(cfg.HTTPAddr)
	if cfg.HTTPTokensFile == "" {
		if !IsLoopback(host) {
			log.Warn("http_allow_anonymous: the HTTP API is served WITHOUT authentication on a non-loopback address: "+
				"anyone who reaches it can read every reading, window, status and dead letter; set http_tokens_file instead",
				"http_addr", cfg.HTTPAddr)
		}
		return nil, nil
	}
	tk, err := apitoken.Load(cfg.HTTPTokensFile, log)
	if err != nil {
		return nil, fmt.Errorf("http_tokens_file: %w", err)
	}
	return []api.Option{api.WithTokens(tk)}, nil
}

// mqttIdentity settles the client id (configured, or generated and kept in
// the data directory) and the credentials: the configured ones, else the
// credentials file, else those in mqtt_url, which work but are logged
// against (they show in ps). The URL is kept without them.
func (c *Collector) mqttIdentity() error {
	c.clientID = c.cfg.ClientID
	if c.clientID == "" {
		id, err := mqttclient.StableClientID(c.cfg.DataDir, "gridedge-collector")
		if err != nil {
			return err
		}
		c.clientID = id
	}
	c.mqttCred = mqttclient.Credentials{Username: c.cfg.MQTTUsername, Password: c.cfg.MQTTPassword}
	if !c.mqttCred.Set() && c.cfg.MQTTCredentialsFile != "" {
		cred, err := mqttclient.LoadFile(c.cfg.MQTTCredentialsFile)
		if err != nil {
			return fmt.Errorf("mqtt_credentials_file: %w", err)
		}
		c.mqttCred = cred
	}
	if c.cfg.MQTTURL == "" {
		return nil
	}
	clean, inURL, err := mqttclient.SplitURL(c.cfg.MQTTURL)
	if err != nil {
		return fmt.Errorf("mqtt_url: %w", err)
	}
	c.mqttURL = clean
	if inURL.Set() {
		c.log.Warn("mqtt_url carries credentials: they show in process listings; use mqtt_credentials_file or GRIDEDGE_MQTT_USERNAME and GRIDEDGE_MQTT_PASSWORD",
			"mqtt_url", mqttclient.Redact(c.cfg.MQTTURL))
		if !c.mqttCred.Set() {
			c.mqttCred = inURL
		}
	}
	return nil
}

func (c *Collector) registerMetrics() error {
	c.m.acks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gridedge_collector_acks_total",
		Help: "End-to-end acks by outcome: published (broker took it), failed (publish error or timeout), dropped (ack queue full).",
	}, []string{"outcome"})
	c.m.connected = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gridedge_collector_mqtt_connected",
		Help: "1 while the MQTT client is connected and subscribed.",
	})
	c.m.connLost = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gridedge_collector_mqtt_connection_lost_total",
		Help: "MQTT connection losses (the client reconnects by itself).",
	})
	c.m.dispatched = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gridedge_collector_mqtt_messages_total",
		Help: "MQTT messages received, by topic kind.",
	}, []string{"kind"})
	cols := []prometheus.Collector{c.m.acks, c.m.connected, c.m.connLost, c.m.dispatched,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
	if c.disk != nil {
		cols = append(cols, c.disk.Metrics()...)
	}
	if c.analytics != nil {
		cols = append(cols, c.analytics.Metrics()...)
	}
	if c.store != nil {
		cols = append(cols, fleetMetrics(c.cfg, c.store, c.now, c.log))
	}
	if c.pg != nil {
		cols = append(append(cols, c.pg.Metrics()...), feedMetrics(c.store, c.rlog.Partitions())...)
	}
	for _, col := range append(cols, c.workers.metrics()...) {
		if err := c.reg.Register(col); err != nil {
			return fmt.Errorf("collector: register metrics: %w", err)
		}
	}
	// Every outcome exists from the start, so rate() and increase() see
	// the first one.
	for _, o := range []string{"published", "failed", "dropped"} {
		c.m.acks.WithLabelValues(o)
	}
	for _, k := range []topic.Kind{topic.Data, topic.Status} {
		c.m.dispatched.WithLabelValues(string(k))
	}
	return nil
}

// HTTPAddr is the bound address of the HTTP API (host:port).
func (c *Collector) HTTPAddr() string { return c.httpLn.Addr().String() }

// MQTTURL is the broker the collector connects to (the embedded broker's
// bound address when that is used).
func (c *Collector) MQTTURL() string { return c.mqttURL }

// Ready is closed once the collector has connected and subscribed for the
// first time.
func (c *Collector) Ready() <-chan struct{} { return c.ready }

// Store gives read access to the collector's store (for tests and tools in
// the same process).
func (c *Collector) Store() *store.Store { return c.store }

func (c *Collector) health() error {
	if err := c.store.Ping(); err != nil {
		return err
	}
	if err := c.disk.Health(); err != nil {
		return err
	}
	if !c.connected.Load() {
		return errors.New("mqtt: not connected")
	}
	return nil
}

// Run connects to the broker, subscribes and serves the API until ctx ends,
// then disconnects and closes the store. It returns nil after a clean
// shutdown. A Collector runs once; a second call returns an error.
func (c *Collector) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("collector: Run called twice")
	}
	defer c.Close()
	if err := c.workers.open(); err != nil {
		return err
	}
	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	workDone := make(chan error, 1)
	go func() { workDone <- c.workers.run(workCtx) }()
	var analyzing sync.WaitGroup
	if c.analytics != nil {
		analyzing.Go(func() { _ = c.analytics.Run(workCtx) })
	}
	// The sink follows the store's feed on its own goroutines: nothing
	// above waits for it, whatever PostgreSQL does.
	sinkCtx, stopSink := context.WithCancel(context.Background())
	defer stopSink()
	var sinks sync.WaitGroup
	if c.pg != nil {
		sinks.Go(func() { _ = c.pg.Run(sinkCtx) })
	}
	var err error
	httpErr := make(chan error, 1)
	go func() {
		if err := c.httpSrv.Serve(c.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			httpErr <- fmt.Errorf("collector: http: %w", err)
		}
	}()
	var ackers sync.WaitGroup
	c.keeper = mqttclient.NewKeeper(c.log, c.mqttURL)
	client := paho.NewClient(c.mqttOptions())
	giveUp := make(chan struct{})
	ackers.Go(func() { c.publishAcks(client, giveUp) })
	var completer sync.WaitGroup
	completer.Go(c.complete)
	c.log.Info("collector starting", "mqtt", c.mqttURL, "client_id", c.clientID, "mqtt_username", c.mqttCred.Username,
		"http", c.HTTPAddr(), "data_dir", c.cfg.DataDir)
	// The keeper connects, and reconnects after a loss, logging why an
	// attempt failed; the OnConnect handler subscribes.
	keepCtx, stopKeeping := context.WithCancel(context.Background())
	var keeping sync.WaitGroup
	keeping.Go(func() { c.keeper.Run(keepCtx, client) })

	select {
	case <-ctx.Done():
	case err = <-httpErr:
	}
	c.log.Info("collector stopping")
	// Stop taking messages first: later ones return without acking, so the
	// broker keeps them for the next start. Then finish what was taken,
	// publish the acks already owed while still connected (bounded by one
	// ack timeout), then disconnect.
	c.handling.Lock()
	c.closed = true
	c.handling.Unlock()
	close(c.inflight)
	completer.Wait() // every taken message durable or failed, PUBACKed, its ack queued
	close(c.acks)
	// The workers commit what they have read and stop; so does a refit.
	stopWork()
	analyzing.Wait()
	if werr := <-workDone; werr != nil && err == nil {
		err = fmt.Errorf("collector: workers: %w", werr)
	}
	stopSink()
	sinks.Wait()
	drain := time.AfterFunc(c.cfg.AckTimeout, func() { close(giveUp) })
	ackers.Wait()
	drain.Stop()
	stopKeeping()
	keeping.Wait()
	client.Disconnect(1000)
	c.connected.Store(false)
	c.m.connected.Set(0)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := c.httpSrv.Shutdown(shutdownCtx); serr != nil && err == nil {
		err = fmt.Errorf("collector: http shutdown: %w", serr)
	}
	if cerr := c.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

func (c *Collector) mqttOptions() *paho.ClientOptions {
	o := paho.NewClientOptions().
		AddBroker(c.mqttURL).
		SetClientID(c.clientID).
		SetUsername(c.mqttCred.Username).
		SetPassword(c.mqttCred.Password).
		SetCleanSession(false).  // the broker queues QoS1 data while we are away
		SetAutoReconnect(false). // c.keeper reconnects, logging each failure
		SetConnectRetry(false).
		SetConnectTimeout(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetOrderMatters(true).    // one batch at a time, in arrival order
		SetAutoAckDisabled(true). // PUBACK only once a message is handled (onMessage)
		SetDefaultPublishHandler(c.onMessage)
	o.SetOnConnectHandler(func(cl paho.Client) {
		// Subscribe on every connect: the session may be new (first start,
		// or the broker lost it). Data goes to the shared group; status is
		// a plain subscription because retained messages are not sent to
		// shared subscriptions.
		tok := cl.SubscribeMultiple(map[string]byte{
			topic.Shared(c.cfg.ShareGroup, topic.Data): 1,
			topic.Filter(topic.Status):                 1,
		}, nil)
		go func() {
			if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				c.log.Error("mqtt subscribe failed; reconnecting", "err", tok.Error())
				c.connected.Store(false)
				c.m.connected.Set(0)
				return
			}
			c.connected.Store(true)
			c.m.connected.Set(1)
			c.log.Info("mqtt connected and subscribed", "broker", c.mqttURL)
			c.readyOnce.Do(func() { close(c.ready) })
		}()
	})
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		c.connected.Store(false)
		c.m.connected.Set(0)
		c.m.connLost.Inc()
		c.log.Warn("mqtt connection lost", "err", err)
		c.keeper.OnLost(err)
	})
	return o
}

// maxInflight bounds the messages taken from the broker and not yet
// durable in the readings log; paho's router waits when it is reached.
const maxInflight = 8192

// inflight is one message on its way into the readings log. Messages are
// completed (PUBACK, device ack) in arrival order, as MQTT requires of
// PUBACKs, whatever order their partitions make them durable in.
type inflight struct {
	m    paho.Message
	kind topic.Kind
	done chan struct{}
	out  intake.Outcome
	err  error
}

// onMessage runs on paho's router goroutine: it validates the message and
// starts its append to the readings log, then returns so the next message
// can be read while this one is made durable. The PUBACK (m.Ack) is sent by
// complete, in arrival order, once the batch is durable, dead-lettered, or
// failed (the agent resends those). A message arriving during shutdown is
// left unacknowledged, so the broker redelivers it after the restart.
func (c *Collector) onMessage(_ paho.Client, m paho.Message) {
	c.handling.RLock()
	defer c.handling.RUnlock()
	if c.closed {
		return
	}
	f := &inflight{m: m, kind: topic.Data, done: make(chan struct{})}
	if strings.HasSuffix(m.Topic(), "/"+string(topic.Status)) {
		f.kind = topic.Status
	}
	c.m.dispatched.WithLabelValues(string(f.kind)).Inc()
	// Bounded by bytes as well as by count; the MQTT client waits.
	_ = c.inflightBytes.Acquire(context.Background(), f.weight(c.cfg.IntakeInflightBytes))
	c.inflight <- f
	ctx := context.Background()
	if f.kind == topic.Status {
		c.intake.HandleStatus(ctx, m.Topic(), m.Payload(), c.now(), func(err error) {
			f.err = err
			close(f.done)
		})
		return
	}
	c.intake.HandleData(ctx, m.Topic(), m.Payload(), c.now(), func(out intake.Outcome, err error) {
		f.out, f.err = out, err
		close(f.done)
	})
}

// weight is the message's share of the in-flight byte bound (at most all
// of it, so a payload larger than the bound is taken alone).
func (f *inflight) weight(bound int64) int64 { return min(int64(len(f.m.Payload()))+256, bound) }

// complete PUBACKs messages in arrival order and queues device acks.
func (c *Collector) complete() {
	for f := range c.inflight {
		<-f.done
		f.m.Ack()
		c.inflightBytes.Release(f.weight(c.cfg.IntakeInflightBytes))
		var rej *intake.RejectError
		switch {
		case errors.Is(f.err, diskguard.ErrLowSpace):
			// Counted, and logged once per episode by the disk guard.
		case f.kind == topic.Status:
			if f.err != nil {
				c.log.Debug("status not logged", "err", f.err)
			}
		case errors.As(f.err, &rej):
			// Counted and logged by intake; never acknowledged.
		case f.err != nil:
			c.log.Error("batch not logged; the agent will resend it", "topic", f.m.Topic(), "err", f.err)
		default:
			select {
			case c.acks <- ackJob{site: f.out.Site, ack: f.out.Ack}:
			default:
				c.m.acks.WithLabelValues("dropped").Inc()
			}
		}
	}
}

// publishAcks publishes acks off the router goroutine: waiting for a PUBACK
// inside a message handler would stall the client's inbound processing.
// Once giveUp is closed the remaining acks are dropped (counted) instead of
// waited for: the agents resend those batches and get them acked then.
func (c *Collector) publishAcks(client paho.Client, giveUp <-chan struct{}) {
	// Acks are pipelined: up to ackPipeline publishes wait for the broker's
	// PUBACK at once, so the ack rate is not one broker round trip per ack.
	type sent struct {
		tok    paho.Token
		device string
		at     time.Time
	}
	pending := make(chan sent, ackPipeline)
	var waiter sync.WaitGroup
	waiter.Go(func() {
		for p := range pending {
			// Each ack waits at most ack_timeout from its publish, so a
			// stalled broker holds the shutdown for one ack_timeout, not one
			// per pending ack.
			if !confirmedWithin(p.tok, time.Until(p.at.Add(c.cfg.AckTimeout))) || p.tok.Error() != nil {
				// A lost ack costs a resend, which deduplication absorbs.
				c.m.acks.WithLabelValues("failed").Inc()
				c.log.Warn("ack not published", "device", p.device, "err", p.tok.Error())
				continue
			}
			c.m.acks.WithLabelValues("published").Inc()
		}
	})
	defer waiter.Wait()
	defer close(pending)
	for job := range c.acks {
		select {
		case <-giveUp:
			c.m.acks.WithLabelValues("dropped").Inc()
			continue
		default:
		}
		payload, err := wire.EncodeAck(job.ack)
		if err != nil {
			c.m.acks.WithLabelValues("failed").Inc()
			c.log.Error("encode ack", "err", err)
			continue
		}
		pending <- sent{client.Publish(topic.For(job.site, job.ack.DeviceId, topic.Ack), 1, false, payload), job.ack.DeviceId, time.Now()}
	}
}

// confirmedWithin reports whether tok completes within d. A token already
// complete counts whatever d is: once the ack waiter falls more than
// ack_timeout behind it waits zero time per ack, and paho's WaitTimeout
// then picks at random between its completion and the expired timer.
func confirmedWithin(tok paho.Token, d time.Duration) bool {
	select {
	case <-tok.Done():
		return true
	default:
	}
	if d <= 0 {
		return false
	}
	return tok.WaitTimeout(d)
}

// ackPipeline bounds the acks published and not yet confirmed by the broker.
const ackPipeline = 16384

// Close releases the store, the broker and the HTTP listener. Run calls it;
// call it yourself only when Run is never called. It is idempotent.
func (c *Collector) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.closeResources() })
	return c.closeErr
}

func (c *Collector) closeResources() error {
	c.handling.Lock()
	c.closed = true
	c.handling.Unlock()
	var errs []error
	if c.httpLn != nil {
		if err := c.httpLn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("http listener: %w", err))
		}
	}
	if c.broker != nil {
		if err := c.broker.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.pg != nil {
		c.pg.Close()
	}
	if c.pgReader != nil {
		c.pgReader.Close()
	}
	if c.rlog != nil {
		if err := c.rlog.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.store != nil {
		if err := c.store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("collector: close: %w", err)
	}
	return nil
}

func pipelineNames(pipes []window.Pipeline) []string {
	names := make([]string, len(pipes))
	for i, p := range pipes {
		names[i] = p.Name
	}
	return names
}
