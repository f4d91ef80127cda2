package publish

import (
	"log/slog"
	"time"

	"github.com/gridedge/gridedge/shared/wire"
)

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
	light          bool
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

// WithLightClient makes the publisher use gridedge's small MQTT client
// (edge/mqttlite) instead of paho: one goroutine per connection instead of
// about eight, for processes that hold thousands of sessions (the
// simulator). The publisher's logic (batches, acks, resends, backlog
// replay, status, reconnect) is the same. Only tcp and ssl broker URLs are
// supported; a PUBACK lost with its connection fails the publish, which
// the ack timeout resends, as it does with paho.
func WithLightClient() Option { return func(s *settings) { s.light = true } }
