package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridedge/gridedge/edge/buffer"
	"github.com/gridedge/gridedge/edge/clock"
	"github.com/gridedge/gridedge/shared/topic"
	"github.com/gridedge/gridedge/shared/wire"
)

// Config is the connection and batching configuration.
type Config struct {
	Site     string
	DeviceID string
	URL      string
	ClientID string
	Username string
	Password string
	// CAFile, CertFile and KeyFile are PEM files for TLS; CertFile and
	// KeyFile together enable client-certificate authentication.
	CAFile   string
	CertFile string
	KeyFile  string

	KeepAlive        time.Duration
	AckTimeout       time.Duration
	MaxBatchReadings int
	MaxBatchBytes    int
	// ReplayRate bounds backlog readings per second (0 = unlimited); live
	// readings are not counted against it.
	ReplayRate int
}

// Stats are the publisher's counters.
type Stats struct {
	Connected bool
	Connects  uint64 // successful connections
	// ConnectFailures counts connection attempts that failed (refused,
	// TLS handshake or authentication failed, timed out, ack subscription
	// refused).
	ConnectFailures uint64
	Batches         uint64 // batches published (first sends and resends)
	Sent            uint64 // readings published for the first time
	Resent          uint64 // readings published again after an ack timeout
	Acked           uint64 // readings deleted from the buffer on an ack
	Acks            uint64 // ack messages accepted
	BadAcks         uint64 // ack messages rejected (malformed, wrong device)
	PublishErrors   uint64 // publishes that failed or timed out
	BacklogSent     uint64 // readings first sent as backlog replay (a subset of Sent)
	InFlight        int    // batches sent and not yet fully acked
}

// Publisher sends the buffer's readings and applies the collector's acks.
type Publisher struct {
	cfg Config
	buf *buffer.Buffer
	src clock.Source
	o   settings
	log *slog.Logger

	dataTopic, ackTopic, statusTopic string

	wake chan struct{}
	acks chan *wire.Ack
	lost chan struct{}

	connected     atomic.Bool
	connects      atomic.Uint64
	connectFails  atomic.Uint64
	batches       atomic.Uint64
	sent          atomic.Uint64
	resent        atomic.Uint64
	acked         atomic.Uint64
	ackCount      atomic.Uint64
	badAcks       atomic.Uint64
	publishErrors atomic.Uint64
	inFlightN     atomic.Int64
	backlogSent   atomic.Uint64
	heartbeat     atomic.Int64 // unix ns of the send loop's last round
	idle          atomic.Bool  // the send loop is waiting for work

	runOnce sync.Once
}

// New checks cfg and builds a publisher for buf. It does not connect; Run
// does.
func New(cfg Config, buf *buffer.Buffer, src clock.Source, opts ...Option) (*Publisher, error) {
	o := settings{
		log: slog.Default(), version: "dev", statusInterval: 30 * time.Second, maxInFlight: 8,
		minBackoff: 500 * time.Millisecond, maxBackoff: 60 * time.Second,
		connectTimeout: 15 * time.Second, publishTimeout: 10 * time.Second,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if err := wire.ValidateDeviceID(cfg.DeviceID); err != nil {
		return nil, fmt.Errorf("publish: device id: %w", err)
	}
	if err := topic.ValidateSite(cfg.Site); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	if buf == nil || src == nil {
		return nil, errors.New("publish: buffer and clock source are required")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID(cfg.Username, cfg.DeviceID)
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 30 * time.Second
	}
	if cfg.MaxBatchReadings <= 0 {
		cfg.MaxBatchReadings = 500
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = 64 << 10
	}
	if _, err := url.Parse(cfg.URL); err != nil || cfg.URL == "" {
		return nil, fmt.Errorf("publish: broker url %q: %v", cfg.URL, err)
	}
	return &Publisher{
		cfg: cfg, buf: buf, src: src, o: o,
		log:         o.log.With("component", "publish"),
		dataTopic:   topic.For(cfg.Site, cfg.DeviceID, topic.Data),
		ackTopic:    topic.For(cfg.Site, cfg.DeviceID, topic.Ack),
		statusTopic: topic.For(cfg.Site, cfg.DeviceID, topic.Status),
		wake:        make(chan struct{}, 1),
		// Acks answer batches in flight (at most maxInFlight, plus
		// resends): twice that is room enough. A full queue makes the
		// handler wait (onAckMessage); the send loop drains it every round.
		acks: make(chan *wire.Ack, max(2*o.maxInFlight, 16)),
		lost: make(chan struct{}, 1),
	}, nil
}

// DefaultClientID is the client id used when none is configured: the
// username when there is one (gridedge's brokers refuse a device whose
// client id differs from its username, so no client can take over another's
// session), else "gridedge-<device>".
func DefaultClientID(username, device string) string {
	if username != "" {
		return username
	}
	if device == "" {
		return ""
	}
	return "gridedge-" + device
}

// Notify tells the publisher new readings are in the buffer. It never
// blocks.
func (p *Publisher) Notify() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Heartbeat is when the send loop last went round (zero before Run), or
// the present while it is idle, waiting for readings, acks or a deadline:
// the loop sleeps as long as it has nothing to do, so only an old
// heartbeat of a loop that is not waiting means it is stuck (in a publish).
func (p *Publisher) Heartbeat() time.Time {
	ns := p.heartbeat.Load()
	if ns == 0 {
		return time.Time{}
	}
	if p.idle.Load() {
		return time.Now()
	}
	return time.Unix(0, ns)
}

// Stats returns the counters.
func (p *Publisher) Stats() Stats {
	return Stats{
		Connected: p.connected.Load(), Connects: p.connects.Load(), ConnectFailures: p.connectFails.Load(), Batches: p.batches.Load(),
		Sent: p.sent.Load(), Resent: p.resent.Load(), Acked: p.acked.Load(), Acks: p.ackCount.Load(),
		BadAcks: p.badAcks.Load(), PublishErrors: p.publishErrors.Load(), InFlight: int(p.inFlightN.Load()),
		BacklogSent: p.backlogSent.Load(),
	}
}

// Run connects and publishes until ctx is done, then publishes an offline
// status and disconnects. It returns nil on cancellation and an error only
// for configuration problems (TLS files). Run may be called once.
func (p *Publisher) Run(ctx context.Context) error {
	err := errors.New("publish: Run called twice")
	p.runOnce.Do(func() { err = p.run(ctx) })
	return err
}

func (p *Publisher) run(ctx context.Context) error {
	tc, err := p.tlsConfig()
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	client := p.newSession(tc)
	connCtx, stopConn := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.connectLoop(connCtx, client) }()

	p.sendLoop(ctx, client)

	stopConn()
	wg.Wait()
	if client.IsConnectionOpen() {
		// Goodbye: the retained status says offline without waiting for the
		// broker to fire the will after the keepalive.
		tok := client.Publish(p.statusTopic, 1, true, p.statusMessage(false))
		_, _ = wait(context.Background(), tok, 2*time.Second)
		client.Disconnect(500)
	}
	p.connected.Store(false)
	return nil
}
