package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/gridedge/gridedge/cloud/devices"
)

// Defaults for the packet size limit and the expiry of sessions left by
// clients that went away.
const (
	// DefaultMaxPacketBytes is four times the agent's largest batch
	// (64 KiB), the same limit as the shipped Mosquitto configuration.
	DefaultMaxPacketBytes = 256 << 10
	// DefaultSessionExpiry is how long the session of a vanished client
	// (its subscriptions and queued acks) is kept. An agent resubscribes
	// and resends whatever was not acked when it comes back later.
	DefaultSessionExpiry = time.Hour
)

// Broker is a running embedded MQTT broker.
type Broker struct {
	srv       *mqtt.Server
	tcp       *listeners.TCP
	tls       *listeners.TCP
	collector string // the secret of the collector process's own identity
	auth      *authHook
}

// Option changes how Start sets the broker up.
type Option func(*settings)

type settings struct {
	log       *slog.Logger
	registry  *devices.Registry
	anonymous bool
	tlsAddr   string
	tlsConfig *tls.Config
	maxPacket uint32
	expiry    time.Duration
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.log = l } }

// WithRegistry authenticates clients against reg and applies the topic
// rules of the package documentation.
func WithRegistry(reg *devices.Registry) Option { return func(s *settings) { s.registry = reg } }

// WithAnonymous lets every client connect without credentials and use any
// topic. For development only; Start logs a warning saying so.
func WithAnonymous() Option { return func(s *settings) { s.anonymous = true } }

// WithTLSListener adds a listener on addr serving MQTT over TLS with cfg.
func WithTLSListener(addr string, cfg *tls.Config) Option {
	return func(s *settings) { s.tlsAddr, s.tlsConfig = addr, cfg }
}

// WithMaxPacketSize limits the size of any MQTT packet a client sends
// (default DefaultMaxPacketBytes); a larger one closes its connection.
func WithMaxPacketSize(bytes uint32) Option { return func(s *settings) { s.maxPacket = bytes } }

// WithSessionExpiry sets how long a disconnected client's session is kept
// (default DefaultSessionExpiry).
func WithSessionExpiry(d time.Duration) Option { return func(s *settings) { s.expiry = d } }

// Start listens on addr (host:port; port 0 picks a free one) and serves MQTT
// until Close. It needs WithRegistry or, explicitly, WithAnonymous. When
// Start returns nil the listeners are bound, so clients can connect at once.
func Start(addr string, opts ...Option) (*Broker, error) {
	s := settings{log: slog.Default(), maxPacket: DefaultMaxPacketBytes, expiry: DefaultSessionExpiry}
	for _, o := range opts {
		o(&s)
	}
	switch {
	case s.registry == nil && !s.anonymous:
		return nil, errors.New("broker: no device registry: every client must authenticate (or allow anonymous access explicitly)")
	case s.registry != nil && s.anonymous:
		return nil, errors.New("broker: a device registry and anonymous access exclude each other")
	case s.maxPacket < 1024:
		return nil, fmt.Errorf("broker: max packet size %d bytes is below 1024", s.maxPacket)
	case s.expiry < time.Second || s.expiry.Seconds() > math.MaxUint32:
		return nil, fmt.Errorf("broker: session expiry %v outside 1s..136y", s.expiry)
	case s.tlsAddr != "" && s.tlsConfig == nil:
		return nil, errors.New("broker: TLS listener without a TLS configuration")
	}
	log := s.log.With("component", "embedded-broker")
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = s.maxPacket
	caps.MaximumSessionExpiryInterval = uint32(s.expiry.Seconds())
	srv := mqtt.New(&mqtt.Options{Logger: log, Capabilities: caps})
	secret, err := devices.GenerateSecret()
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	hook := &authHook{srv: srv, reg: s.registry, anonymous: s.anonymous, collectorSecret: secret, log: log}
	if err := srv.AddHook(hook, nil); err != nil {
		return nil, fmt.Errorf("broker: auth hook: %w", err)
	}
	b := &Broker{srv: srv, collector: secret, auth: hook}
	b.tcp = listeners.NewTCP(listeners.Config{Type: "tcp", ID: "tcp", Address: addr})
	if err := srv.AddListener(b.tcp); err != nil {
		return nil, fmt.Errorf("broker: listen on %s: %w", addr, err)
	}
	if s.tlsAddr != "" {
		b.tls = listeners.NewTCP(listeners.Config{Type: "tcp", ID: "tls", Address: s.tlsAddr, TLSConfig: s.tlsConfig})
		if err := srv.AddListener(b.tls); err != nil {
			_ = srv.Close()
			return nil, fmt.Errorf("broker: TLS listener on %s: %w", s.tlsAddr, err)
		}
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("broker: serve: %w", err)
	}
	if s.anonymous {
		log.Warn("EMBEDDED BROKER ALLOWS ANONYMOUS ACCESS: any client on the network can publish readings as any device, " +
			"read every device's data and forge acks that make agents delete unstored readings. For development only.")
	} else {
		log.Info("embedded broker: clients authenticate", "devices_file", s.registry.Path(), "identities", s.registry.Len(),
			"max_packet_bytes", s.maxPacket, "session_expiry", s.expiry)
	}
	return b, nil
}

// Addr is the bound host:port of the plain listener.
func (b *Broker) Addr() string { return b.tcp.Address() }

// URL is the plain listener in the form MQTT clients take, tcp://host:port.
func (b *Broker) URL() string { return "tcp://" + b.Addr() }

// TLSAddr is the bound host:port of the TLS listener ("" without one).
func (b *Broker) TLSAddr() string {
	if b.tls == nil {
		return ""
	}
	return b.tls.Address()
}

// CollectorCredentials are the username and password of the collector
// process's own identity on this broker. The secret is generated at Start
// and never leaves the process.
func (b *Broker) CollectorCredentials() (username, password string) {
	return devices.ReservedCollector, b.collector
}

// Refused is how many connection attempts were refused since Start.
func (b *Broker) Refused() uint64 { return b.auth.refused.Load() }

// Close disconnects every client and stops listening.
func (b *Broker) Close() error {
	if b == nil || b.srv == nil {
		return errors.New("broker: not started")
	}
	if err := b.srv.Close(); err != nil {
		return fmt.Errorf("broker: close: %w", err)
	}
	return nil
}
