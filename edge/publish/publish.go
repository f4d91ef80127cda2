package publish

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

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

// Option adjusts a Publisher.
type Option func(*settings)

type settings struct {
	log            *slog.Logger
	version        string
	status         func() *wire.Status
	statusInterval time.Duration
	maxInFlight    int
	minBackoff     time.Duration
	maxBackoff     time.Duration
	connectTimeout time.Duration
	publishTimeout time.Duration
	onAck          func(deleted int)
	dial           DialFunc
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.log = l } }

// WithAgentVersion sets the version carried in batches and status.
func WithAgentVersion(v string) Option { return func(s *settings) { s.version = v } }

// WithStatus sets the function that builds the retained status message
// (online is set by the publisher) and how often it is republished.
func WithStatus(fn func() *wire.Status, every time.Duration) Option {
	return func(s *settings) { s.status, s.statusInterval = fn, every }
}

// WithMaxInFlight bounds the batches awaiting an ack (default 8).
func WithMaxInFlight(n int) Option { return func(s *settings) { s.maxInFlight = max(n, 1) } }

// WithBackoff sets the reconnect backoff bounds (default 500 ms .. 60 s).
func WithBackoff(min, max time.Duration) Option {
	return func(s *settings) { s.minBackoff, s.maxBackoff = min, max }
}

// WithAckHook calls fn after each accepted ack with the number of readings
// it deleted.
func WithAckHook(fn func(deleted int)) Option { return func(s *settings) { s.onAck = fn } }

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
		acks:        make(chan *wire.Ack, 256),
		lost:        make(chan struct{}, 1),
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

func (p *Publisher) tlsConfig() (*tls.Config, error) {
	u, _ := url.Parse(p.cfg.URL)
	secure := u.Scheme == "ssl" || u.Scheme == "tls" || u.Scheme == "mqtts" || u.Scheme == "wss"
	if !secure && p.cfg.CAFile == "" && p.cfg.CertFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if p.cfg.CAFile != "" {
		pem, err := os.ReadFile(p.cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt.ca_file: %s holds no PEM certificate", p.cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if p.cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(p.cfg.CertFile, p.cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (p *Publisher) statusMessage(online bool) []byte {
	var st *wire.Status
	if p.o.status != nil {
		st = p.o.status()
	}
	if st == nil {
		st = &wire.Status{}
	}
	st.DeviceId = p.cfg.DeviceID
	st.Online = online
	st.AgentVersion = p.o.version
	if st.WallNs == 0 {
		now := p.src.Now()
		st.WallNs, st.BootId, st.ClockQuality = now.WallNs, now.BootID, p.src.Quality()
	}
	out, err := wire.EncodeStatus(st)
	if err != nil {
		p.log.Error("encode status", "err", err)
		return nil
	}
	return out
}

func (p *Publisher) clientOptions(tc *tls.Config) *mqtt.ClientOptions {
	o := mqtt.NewClientOptions().
		AddBroker(p.cfg.URL).
		SetClientID(p.cfg.ClientID).
		SetCleanSession(false).
		SetOrderMatters(false).
		SetKeepAlive(p.cfg.KeepAlive).
		SetPingTimeout(10*time.Second).
		SetConnectTimeout(p.o.connectTimeout).
		SetWriteTimeout(p.o.publishTimeout).
		// The publisher runs its own reconnect loop with jitter.
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(true).
		SetBinaryWill(p.statusTopic, p.statusMessage(false), 1, true).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			p.connected.Store(false)
			p.log.Warn("connection lost", "err", err)
			select {
			case p.lost <- struct{}{}:
			default:
			}
		})
	if p.cfg.Username != "" {
		o.SetUsername(p.cfg.Username).SetPassword(p.cfg.Password)
	}
	if tc != nil {
		o.SetTLSConfig(tc)
	}
	if p.o.dial != nil {
		open := p.openConn(tc)
		o.SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) { return open(u) })
	}
	return o
}

// wait waits for tok at most d (and not past ctx). It reports whether the
// token completed and its error.
func wait(ctx context.Context, tok mqtt.Token, d time.Duration) (bool, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-tok.Done():
		return true, tok.Error()
	case <-t.C:
		return false, errors.New("timed out")
	case <-ctx.Done():
		return false, ctx.Err()
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
	client := mqtt.NewClient(p.clientOptions(tc))
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

// connectLoop keeps the client connected: connect, subscribe to acks, send
// the birth message, wait for a loss, back off with jitter, repeat.
func (p *Publisher) connectLoop(ctx context.Context, client mqtt.Client) {
	backoff := p.o.minBackoff
	sleep := func() bool {
		// Full jitter in [backoff/2, backoff): a fleet does not reconnect in lockstep.
		d := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, p.o.maxBackoff)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for ctx.Err() == nil {
		select {
		case <-p.lost: // drop a stale loss signal
		default:
		}
		done, err := wait(ctx, client.Connect(), p.o.connectTimeout+time.Second)
		if !done || err != nil {
			if ctx.Err() == nil {
				p.connectFails.Add(1)
				p.log.Warn("connect failed", "url", p.cfg.URL, "err", err, "retry_in_max", backoff)
			}
			client.Disconnect(0)
			if !sleep() {
				return
			}
			continue
		}
		done, err = wait(ctx, client.Subscribe(p.ackTopic, 1, p.onAckMessage), p.o.connectTimeout)
		if !done || err != nil {
			if ctx.Err() == nil {
				p.connectFails.Add(1)
			}
			p.log.Warn("subscribe to acks failed", "topic", p.ackTopic, "err", err)
			client.Disconnect(0)
			if !sleep() {
				return
			}
			continue
		}
		p.publishStatus(ctx, client)
		backoff = p.o.minBackoff
		p.connects.Add(1)
		p.connected.Store(true)
		p.log.Info("connected", "url", p.cfg.URL)
		p.Notify()
		statusTick := time.NewTicker(p.o.statusInterval)
	connected:
		for {
			select {
			case <-ctx.Done():
				statusTick.Stop()
				return
			case <-p.lost:
				break connected
			case <-statusTick.C:
				p.publishStatus(ctx, client)
			}
		}
		statusTick.Stop()
		if !sleep() {
			return
		}
	}
}

func (p *Publisher) publishStatus(ctx context.Context, client mqtt.Client) {
	msg := p.statusMessage(true)
	if msg == nil {
		return
	}
	if _, err := wait(ctx, client.Publish(p.statusTopic, 1, true, msg), p.o.publishTimeout); err != nil {
		p.log.Warn("publish status", "err", err)
	}
}

func (p *Publisher) onAckMessage(_ mqtt.Client, m mqtt.Message) {
	ack, err := wire.DecodeAck(m.Payload())
	if err == nil && ack.DeviceId != p.cfg.DeviceID {
		err = fmt.Errorf("ack for device %q on %s", ack.DeviceId, m.Topic())
	}
	if err != nil {
		p.badAcks.Add(1)
		p.log.Warn("ack rejected", "err", err)
		return
	}
	// Handlers run on their own goroutines (order does not matter for
	// acks), so waiting here does not stall the client.
	select {
	case p.acks <- ack:
	case <-time.After(30 * time.Second):
		p.log.Warn("ack queue full, ack dropped (the readings are resent and acked again)")
	}
}

// flight is a batch that was sent and not yet fully acked.
type flight struct {
	epoch   uint64
	seqs    []uint64 // sorted; removed as acks arrive
	sentAt  time.Time
	backlog bool
}

// sender holds the send loop's state; only sendLoop touches it.
type sender struct {
	cursor  uint64 // highest sequence number sent at least once (the live cursor)
	flights []*flight
	// split > 0 while a backlog is replayed: readings in (backlog, split]
	// are still to be sent, oldest first, rate-limited.
	split, backlog uint64
	tokens         float64
	tokensAt       time.Time
}

func (s *sender) backlogFlights() int {
	n := 0
	for _, f := range s.flights {
		if f.backlog {
			n++
		}
	}
	return n
}

// sendLoop sends, resends and applies acks. It sleeps until there is
// something to do: a Notify (new readings, a new connection), an ack, the
// earliest ack deadline of a batch in flight, or the next round of a
// backlog replay. An idle agent's publisher does not wake.
func (p *Publisher) sendLoop(ctx context.Context, client mqtt.Client) {
	s := &sender{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		p.heartbeat.Store(time.Now().UnixNano())
		var deadline <-chan time.Time
		if d, ok := p.nextDeadline(s); ok {
			timer.Reset(d)
			deadline = timer.C
		}
		p.idle.Store(true)
		select {
		case <-ctx.Done():
			p.idle.Store(false)
			return
		case ack := <-p.acks:
			p.applyAck(s, ack)
		case <-p.wake:
		case <-deadline:
		}
		p.idle.Store(false)
		timer.Stop()
		// Apply every queued ack before deciding what to send.
		for drained := false; !drained; {
			select {
			case ack := <-p.acks:
				p.applyAck(s, ack)
			default:
				drained = true
			}
		}
		// Data waits for the birth message of this connection: a collector
		// learns the site's time zone and the agent's state from it before
		// the first reading arrives.
		if !p.connected.Load() || !client.IsConnectionOpen() {
			continue
		}
		p.resendExpired(ctx, client, s)
		p.sendNew(ctx, client, s)
		p.inFlightN.Store(int64(len(s.flights)))
	}
}

// nextDeadline is how long the send loop may sleep before it has work
// nobody will wake it for: the earliest ack deadline of a batch in flight,
// or the next round of a backlog replay. ok is false when it can sleep
// until woken (nothing in flight, or not connected: the connection's
// Notify wakes it).
func (p *Publisher) nextDeadline(s *sender) (d time.Duration, ok bool) {
	if !p.connected.Load() {
		return 0, false
	}
	// The cadence of a backlog replay, and the retry interval of a resend
	// that failed (its deadline has passed).
	round := min(p.cfg.AckTimeout/4, time.Second)
	if s.split != 0 {
		return round, true
	}
	if len(s.flights) == 0 {
		return 0, false
	}
	earliest := s.flights[0].sentAt
	for _, f := range s.flights[1:] {
		if f.sentAt.Before(earliest) {
			earliest = f.sentAt
		}
	}
	if d = time.Until(earliest.Add(p.cfg.AckTimeout)); d <= 0 {
		d = round
	}
	return d, true
}

func (p *Publisher) applyAck(s *sender, ack *wire.Ack) {
	// Only what this process has sent can have been stored by the
	// collector: a buggy or forged ack for the rest must not delete it.
	ranges := clip(ack.Ranges, s.sentRanges())
	if !sameRanges(ranges, ack.Ranges) {
		p.log.Warn("ack names readings not sent by this process; ignoring those", "ranges", len(ack.Ranges))
	}
	n, err := p.buf.Delete(ack.SeqEpoch, ranges...)
	if err != nil {
		p.log.Error("delete acked readings", "err", err)
		return
	}
	p.ackCount.Add(1)
	p.acked.Add(uint64(n))
	s.flights = slices.DeleteFunc(s.flights, func(f *flight) bool {
		if f.epoch == ack.SeqEpoch {
			f.seqs = slices.DeleteFunc(f.seqs, func(q uint64) bool { return inRanges(q, ack.Ranges) })
		}
		return len(f.seqs) == 0
	})
	p.inFlightN.Store(int64(len(s.flights)))
	if p.o.onAck != nil {
		p.o.onAck(n)
	}
}

// sentRanges are the sequence numbers sent at least once: everything up to
// the live cursor, except the part of a backlog not replayed yet.
func (s *sender) sentRanges() []*wire.SeqRange {
	if s.cursor == 0 {
		return nil
	}
	if s.split == 0 || s.backlog >= s.split {
		return []*wire.SeqRange{{First: 0, Last: s.cursor}}
	}
	out := []*wire.SeqRange{}
	if s.backlog > 0 {
		out = append(out, &wire.SeqRange{First: 0, Last: s.backlog})
	}
	if s.cursor > s.split {
		out = append(out, &wire.SeqRange{First: s.split + 1, Last: s.cursor})
	}
	return out
}

// clip intersects ranges with allowed (both sorted or not; small lists).
func clip(ranges, allowed []*wire.SeqRange) []*wire.SeqRange {
	var out []*wire.SeqRange
	for _, r := range ranges {
		for _, a := range allowed {
			if lo, hi := max(r.First, a.First), min(r.Last, a.Last); lo <= hi {
				out = append(out, &wire.SeqRange{First: lo, Last: hi})
			}
		}
	}
	return out
}

func sameRanges(a, b []*wire.SeqRange) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].First != b[i].First || a[i].Last != b[i].Last {
			return false
		}
	}
	return true
}

func inRanges(q uint64, rs []*wire.SeqRange) bool {
	for _, r := range rs {
		if q >= r.First && q <= r.Last {
			return true
		}
	}
	return false
}

// resendExpired sends again every batch whose ack is overdue, reading it
// back from the buffer (what was deleted meanwhile is skipped).
func (p *Publisher) resendExpired(ctx context.Context, client mqtt.Client, s *sender) {
	now := time.Now()
	for _, f := range s.flights {
		if now.Sub(f.sentAt) < p.cfg.AckTimeout {
			continue
		}
		recs, err := p.buf.ReadRange(f.seqs[0], f.seqs[len(f.seqs)-1], len(f.seqs))
		if err != nil {
			p.log.Error("read for resend", "err", err)
			return
		}
		recs = slices.DeleteFunc(recs, func(r buffer.Record) bool {
			_, found := slices.BinarySearch(f.seqs, r.Seq)
			return !found
		})
		f.seqs = f.seqs[:0]
		for _, r := range recs {
			f.seqs = append(f.seqs, r.Seq)
		}
		f.sentAt = now
		for len(recs) > 0 {
			n := batchLen(recs, p.cfg.MaxBatchReadings, p.cfg.MaxBatchBytes)
			p.publish(ctx, client, recs[:n])
			p.resent.Add(uint64(n))
			recs = recs[n:]
		}
	}
	s.flights = slices.DeleteFunc(s.flights, func(f *flight) bool { return len(f.seqs) == 0 })
}

// sendNew sends what has not been sent yet while the in-flight window has
// room.
//
// After an outage the unsent part of the buffer is a backlog. It is split
// off at the newest reading (s.split): readings after the split are live
// and sent first, every round; the backlog (s.backlog+1 .. s.split) is sent
// oldest first in between, limited to ReplayRate readings/s and to half the
// in-flight window. So live data keeps flowing while hours of backlog
// drain, and the drain does not flood the broker.
func (p *Publisher) sendNew(ctx context.Context, client mqtt.Client, s *sender) {
	if s.split == 0 && p.buf.NextSeq()-1 > s.cursor+uint64(2*p.cfg.MaxBatchReadings) {
		s.split = p.buf.NextSeq() - 1
		s.backlog = s.cursor
		s.cursor = s.split
		p.log.Info("replaying backlog", "from_seq", s.backlog+1, "to_seq", s.split, "rate", p.cfg.ReplayRate)
	}
	for ctx.Err() == nil && len(s.flights) < p.o.maxInFlight {
		sentLive := p.sendLive(ctx, client, s)
		sentBacklog := p.sendBacklog(ctx, client, s)
		if !sentLive && !sentBacklog {
			return
		}
	}
}

// sendLive sends one batch past the live cursor. It reports whether it
// sent anything.
func (p *Publisher) sendLive(ctx context.Context, client mqtt.Client, s *sender) bool {
	if len(s.flights) >= p.o.maxInFlight {
		return false
	}
	recs, err := p.buf.Read(s.cursor, p.cfg.MaxBatchReadings)
	if err != nil || len(recs) == 0 {
		p.logReadErr(err)
		return false
	}
	recs = recs[:batchLen(recs, p.cfg.MaxBatchReadings, p.cfg.MaxBatchBytes)]
	s.cursor = recs[len(recs)-1].Seq
	p.sendFlight(ctx, client, s, recs, false)
	return true
}

// sendBacklog sends one backlog batch if the replay rate and the window
// allow. It reports whether it sent anything.
func (p *Publisher) sendBacklog(ctx context.Context, client mqtt.Client, s *sender) bool {
	if s.split == 0 || s.backlogFlights() >= max(p.o.maxInFlight/2, 1) || len(s.flights) >= p.o.maxInFlight {
		return false
	}
	limit := p.cfg.MaxBatchReadings
	if p.cfg.ReplayRate > 0 {
		now := time.Now()
		if s.tokensAt.IsZero() {
			s.tokens, s.tokensAt = float64(min(p.cfg.ReplayRate, limit)), now
		}
		s.tokens = min(s.tokens+now.Sub(s.tokensAt).Seconds()*float64(p.cfg.ReplayRate), float64(max(p.cfg.ReplayRate, limit)))
		s.tokensAt = now
		limit = min(limit, int(s.tokens))
		if limit < 1 {
			return false
		}
	}
	recs, err := p.buf.ReadRange(s.backlog+1, s.split, limit)
	if err != nil {
		p.logReadErr(err)
		return false
	}
	if len(recs) == 0 {
		// Backlog drained: back to one cursor.
		p.log.Info("backlog replayed", "through_seq", s.split)
		s.split, s.backlog, s.tokensAt = 0, 0, time.Time{}
		return false
	}
	recs = recs[:batchLen(recs, limit, p.cfg.MaxBatchBytes)]
	s.backlog = recs[len(recs)-1].Seq
	if p.cfg.ReplayRate > 0 {
		s.tokens -= float64(len(recs))
	}
	p.sendFlight(ctx, client, s, recs, true)
	return true
}

func (p *Publisher) logReadErr(err error) {
	if err != nil && !errors.Is(err, buffer.ErrClosed) {
		p.log.Error("read buffer", "err", err)
	}
}

func (p *Publisher) sendFlight(ctx context.Context, client mqtt.Client, s *sender, recs []buffer.Record, backlog bool) {
	f := &flight{epoch: recs[0].SeqEpoch, sentAt: time.Now(), seqs: make([]uint64, len(recs)), backlog: backlog}
	for i, r := range recs {
		f.seqs[i] = r.Seq
	}
	s.flights = append(s.flights, f)
	p.publish(ctx, client, recs)
	p.sent.Add(uint64(len(recs)))
	if backlog {
		p.backlogSent.Add(uint64(len(recs)))
	}
}

// publish encodes recs (one epoch, one boot) as a batch re-stamped with the
// best time known now and publishes it at QoS 1. Failures are counted and
// logged; the ack timeout brings the readings back.
func (p *Publisher) publish(ctx context.Context, client mqtt.Client, recs []buffer.Record) {
	now := p.src.Now()
	b := &wire.Batch{
		DeviceId: p.cfg.DeviceID, BootId: recs[0].BootID, SeqEpoch: recs[0].SeqEpoch,
		SentBootId: now.BootID, SentMonoNs: now.MonoNs, SentWallNs: now.WallNs, SentTimeQuality: now.Quality,
		AgentVersion: p.o.version, Readings: make([]*wire.Reading, len(recs)),
	}
	for i, rec := range recs {
		r := rec.Reading
		st := p.src.Correct(clock.Stamp{BootID: rec.BootID, MonoNs: r.MonoNs, WallNs: r.WallNs, Quality: r.TimeQuality, ErrorNs: r.TimeErrorNs})
		r.WallNs, r.TimeQuality, r.TimeErrorNs = st.WallNs, st.Quality, st.ErrorNs
		b.Readings[i] = r
	}
	payload, err := wire.EncodeBatch(b)
	if err != nil {
		p.publishErrors.Add(1)
		p.log.Error("encode batch", "err", err)
		return
	}
	p.batches.Add(1)
	done, err := wait(ctx, client.Publish(p.dataTopic, 1, false, payload), p.o.publishTimeout)
	if !done || err != nil {
		p.publishErrors.Add(1)
		if ctx.Err() == nil {
			p.log.Warn("publish batch", "first_seq", recs[0].Seq, "readings", len(recs), "err", err)
		}
	}
}
