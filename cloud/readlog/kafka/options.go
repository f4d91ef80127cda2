package kafka

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Option changes how a Log is opened.
type Option func(*settings)

type settings struct {
	brokers         []string
	topic           string
	partitions      int
	replication     int16
	create          bool
	retention       time.Duration
	tls             *tls.Config
	sasl            SASL
	clientID        string
	maxRecordBytes  int
	inflightBytes   int
	fetchBytes      int
	deliveryTimeout time.Duration
	sessionTimeout  time.Duration
	instanceID      string
	groupPrefix     string
	log             *slog.Logger
}

func defaults() settings {
	return settings{
		topic:           "gridedge.readings",
		replication:     -1,
		create:          true,
		clientID:        "gridedge-collector",
		maxRecordBytes:  1 << 20,
		inflightBytes:   32 << 20,
		fetchBytes:      4 << 20,
		deliveryTimeout: 30 * time.Second,
		sessionTimeout:  10 * time.Second,
		groupPrefix:     "gridedge-",
		log:             slog.Default(),
	}
}

// SASL names a SASL mechanism and its credentials.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL).
	Mechanism string
	Username  string
	Password  string
}

// Validate reports an unknown mechanism or missing credentials.
func (s SASL) Validate() error {
	switch strings.ToUpper(s.Mechanism) {
	case "":
		return nil
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		return fmt.Errorf("sasl mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
	}
	if s.Username == "" || s.Password == "" {
		return fmt.Errorf("sasl %s: username and password are required", s.Mechanism)
	}
	return nil
}

// WithBrokers sets the seed brokers (host:port). Required.
func WithBrokers(addrs ...string) Option { return func(s *settings) { s.brokers = addrs } }

// WithTopic sets the readings topic (default gridedge.readings).
func WithTopic(name string) Option { return func(s *settings) { s.topic = name } }

// WithPartitions sets the partition count of a topic Open creates; an
// existing topic with another count is refused (devices would move).
// 0 (the default) takes an existing topic's count and refuses to create one.
func WithPartitions(n int) Option { return func(s *settings) { s.partitions = n } }

// WithReplication sets the replication factor of a topic Open creates
// (default -1: the broker's default.replication.factor).
func WithReplication(n int16) Option { return func(s *settings) { s.replication = n } }

// WithCreateTopic says whether Open creates a missing topic (default true).
func WithCreateTopic(on bool) Option { return func(s *settings) { s.create = on } }

// WithRetention sets retention.ms of a topic Open creates (0, the default:
// the broker's log.retention.hours, 7 days unless configured).
func WithRetention(d time.Duration) Option { return func(s *settings) { s.retention = d } }

// WithTLS connects to the brokers over TLS with c.
func WithTLS(c *tls.Config) Option { return func(s *settings) { s.tls = c } }

// WithSASL authenticates with a SASL mechanism.
func WithSASL(a SASL) Option { return func(s *settings) { s.sasl = a } }

// WithClientID sets the Kafka client id (default gridedge-collector).
func WithClientID(id string) Option { return func(s *settings) { s.clientID = id } }

// WithMaxRecordBytes sets the largest key + value Append accepts (default
// 1 MiB); the topic's max.message.bytes must allow it plus about 100 bytes.
func WithMaxRecordBytes(n int) Option { return func(s *settings) { s.maxRecordBytes = n } }

// WithInflightBytes bounds bytes appended and not yet acknowledged (default
// 32 MiB); Append blocks while it is reached.
func WithInflightBytes(n int) Option { return func(s *settings) { s.inflightBytes = n } }

// WithFetchBytes bounds what one Reader fetches at once (default 4 MiB;
// at least one record is always returned).
func WithFetchBytes(n int) Option { return func(s *settings) { s.fetchBytes = n } }

// WithDeliveryTimeout bounds how long the producer retries a record while
// brokers are unreachable before failing its Append (default 30 s).
func WithDeliveryTimeout(d time.Duration) Option { return func(s *settings) { s.deliveryTimeout = d } }

// WithSessionTimeout sets a group member's session timeout (default 10 s):
// a member not heard from for that long loses its partitions.
func WithSessionTimeout(d time.Duration) Option { return func(s *settings) { s.sessionTimeout = d } }

// WithInstanceID makes group members of this Log static (Kafka's
// group.instance.id, e.g. the StatefulSet pod name): a member that restarts
// within the session timeout gets its partitions back without a rebalance.
func WithInstanceID(id string) Option { return func(s *settings) { s.instanceID = id } }

// WithGroupPrefix is prepended to readlog group names to make Kafka group
// ids (default "gridedge-": the workers commit as gridedge-workers).
func WithGroupPrefix(p string) Option { return func(s *settings) { s.groupPrefix = p } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.log = l } }
