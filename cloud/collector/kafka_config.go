package collector

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/gridedge/gridedge/cloud/readlog/kafka"
)

// The roles of one collector binary.
const (
	// RoleAll runs intake, the local readings log and its workers in one
	// process (the default, no Kafka).
	RoleAll = "all"
	// RoleIntake receives MQTT batches, validates them and acknowledges a
	// device once Kafka has its batch. It keeps no state: any number share
	// the MQTT subscription.
	RoleIntake = "intake"
	// RoleWorker is a member of the workers' consumer group: a worker per
	// assigned partition, its store and the HTTP API.
	RoleWorker = "worker"
	// RoleSink follows the workers' output topics (read_committed) into
	// its embedded store and serves the HTTP API for every partition.
	RoleSink = "sink"
)

// KafkaConfig is the Kafka cluster of the intake and worker roles. The
// YAML names are the keys of the kafka: section.
type KafkaConfig struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string `yaml:"brokers"`
	// Topic is the readings topic (default gridedge.readings).
	Topic string `yaml:"topic"`
	// Partitions is the readings topic's partition count when a node
	// creates it (default 16); an existing topic keeps its own, and a
	// configured count that differs from it is refused (devices would move).
	Partitions int `yaml:"partitions"`
	// Replication is the replication factor of created topics (default -1:
	// the brokers' default).
	Replication int `yaml:"replication"`
	// DeadLetterTopic receives intake's dead letters as JSON (default
	// gridedge.deadletters).
	DeadLetterTopic string `yaml:"deadletter_topic"`
	// ChangelogTopic holds each partition's worker state (compacted; default
	// gridedge.worker-state); RawTopic the raw-reading blocks (compacted,
	// and deleted after readings_retention; default gridedge.raw-blocks);
	// ResultsTopic the window results, device counters and statuses
	// (results-feed records, default gridedge.results); LateTopic the late
	// stream (default gridedge.late); ConflictTopic the conflicts (default
	// gridedge.conflicts). All have the readings topic's partition count.
	ChangelogTopic string `yaml:"changelog_topic"`
	RawTopic       string `yaml:"raw_topic"`
	ResultsTopic   string `yaml:"results_topic"`
	LateTopic      string `yaml:"late_topic"`
	ConflictTopic  string `yaml:"conflict_topic"`
	// GroupPrefix makes the consumer group id: <prefix>workers (default
	// "gridedge-").
	GroupPrefix string `yaml:"group_prefix"`
	// InstanceID makes the worker a static group member (the StatefulSet
	// pod name): a restart within SessionTimeout gets its partitions back
	// without a rebalance. Empty: dynamic membership.
	InstanceID string `yaml:"instance_id"`
	// SessionTimeout: a worker not heard from for this long loses its
	// partitions (default 10s).
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// TLS turns TLS on; TLSCA (PEM, default: the system roots), TLSCert
	// and TLSKey (a client certificate, both or neither), TLSServerName.
	TLS           bool   `yaml:"tls"`
	TLSCA         string `yaml:"tls_ca"`
	TLSCert       string `yaml:"tls_cert"`
	TLSKey        string `yaml:"tls_key"`
	TLSServerName string `yaml:"tls_server_name"`
	// SASLMechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: none);
	// SASLUsername and the password, read from SASLPasswordFile (its first
	// line) or, without one, from GRIDEDGE_KAFKA_PASSWORD.
	SASLMechanism    string `yaml:"sasl_mechanism"`
	SASLUsername     string `yaml:"sasl_username"`
	SASLPasswordFile string `yaml:"sasl_password_file"`
	// SASLPassword is set by the command from the environment; never from
	// the YAML file.
	SASLPassword string `yaml:"-"`
}

// DefaultKafkaConfig returns the defaults of the kafka: section.
func DefaultKafkaConfig() KafkaConfig {
	return KafkaConfig{Topic: "gridedge.readings", Partitions: 16, Replication: -1,
		DeadLetterTopic: "gridedge.deadletters", ChangelogTopic: "gridedge.worker-state", RawTopic: "gridedge.raw-blocks", ResultsTopic: "gridedge.results",
		LateTopic: "gridedge.late", ConflictTopic: "gridedge.conflicts", GroupPrefix: "gridedge-", SessionTimeout: 10 * time.Second}
}

func (c Config) validateRole() error {
	switch c.Role {
	case RoleAll:
		return nil
	case RoleIntake, RoleWorker, RoleSink:
	default:
		return fmt.Errorf("role %q: want all, intake, worker or sink", c.Role)
	}
	if c.EmbeddedBroker != "" {
		return fmt.Errorf("role %s: embedded_broker is for role all; the cluster roles use a shared broker (mqtt_url)", c.Role)
	}
	k := c.Kafka
	if len(k.Brokers) == 0 {
		return fmt.Errorf("kafka.brokers: required for role %s (host:port, ...)", c.Role)
	}
	for _, b := range k.Brokers {
		if !strings.Contains(b, ":") {
			return fmt.Errorf("kafka.brokers: %q is not host:port", b)
		}
	}
	topics := map[string]string{}
	for _, t := range [][2]string{{"topic", k.Topic}, {"deadletter_topic", k.DeadLetterTopic}, {"changelog_topic", k.ChangelogTopic}, {"raw_topic", k.RawTopic},
		{"results_topic", k.ResultsTopic}, {"late_topic", k.LateTopic}, {"conflict_topic", k.ConflictTopic}} {
		if t[1] == "" {
			return fmt.Errorf("kafka.%s: required", t[0])
		}
		if other, dup := topics[t[1]]; dup {
			return fmt.Errorf("kafka.%s and kafka.%s: both %q; every topic must be different", other, t[0], t[1])
		}
		topics[t[1]] = t[0]
	}
	if k.Partitions < 1 || k.Partitions > 10000 {
		return fmt.Errorf("kafka.partitions: %d is outside 1..10000", k.Partitions)
	}
	if k.SessionTimeout < time.Second || k.SessionTimeout > 30*time.Minute {
		return fmt.Errorf("kafka.session_timeout: %v is outside 1s..30m", k.SessionTimeout)
	}
	if (k.TLSCert == "") != (k.TLSKey == "") {
		return errors.New("kafka.tls_cert and kafka.tls_key: give both or neither")
	}
	if !k.TLS && (k.TLSCA != "" || k.TLSCert != "" || k.TLSServerName != "") {
		return errors.New("kafka.tls: tls_ca, tls_cert and tls_server_name need tls: true")
	}
	sasl := kafka.SASL{Mechanism: k.SASLMechanism, Username: k.SASLUsername, Password: "set later"}
	if err := sasl.Validate(); err != nil {
		return fmt.Errorf("kafka.sasl_mechanism: %w", err)
	}
	return nil
}

// kafkaOptions turns the kafka: section into the log's options, reading
// the TLS files and the SASL password.
func kafkaOptions(cfg Config, l *slog.Logger) ([]kafka.Option, error) {
	k := cfg.Kafka
	opts := []kafka.Option{
		kafka.WithBrokers(k.Brokers...),
		kafka.WithTopic(k.Topic),
		kafka.WithPartitions(k.Partitions),
		kafka.WithReplication(int16(k.Replication)),
		kafka.WithGroupPrefix(k.GroupPrefix),
		kafka.WithSessionTimeout(k.SessionTimeout),
		kafka.WithRetention(cfg.LogRetention),
		kafka.WithLogger(l),
	}
	if k.InstanceID != "" {
		opts = append(opts, kafka.WithInstanceID(k.InstanceID), kafka.WithClientID("gridedge-"+k.InstanceID))
	}
	if k.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: k.TLSServerName}
		if k.TLSCA != "" {
			pem, err := os.ReadFile(k.TLSCA)
			if err != nil {
				return nil, fmt.Errorf("kafka.tls_ca: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("kafka.tls_ca %s: no PEM certificate in it", k.TLSCA)
			}
		}
		if k.TLSCert != "" {
			cert, err := tls.LoadX509KeyPair(k.TLSCert, k.TLSKey)
			if err != nil {
				return nil, fmt.Errorf("kafka.tls_cert/tls_key: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, kafka.WithTLS(tc))
	}
	if k.SASLMechanism != "" {
		pass := k.SASLPassword
		if k.SASLPasswordFile != "" {
			b, err := os.ReadFile(k.SASLPasswordFile)
			if err != nil {
				return nil, fmt.Errorf("kafka.sasl_password_file: %w", err)
			}
			pass, _, _ = strings.Cut(string(b), "\n")
			pass = strings.TrimRight(pass, "\r")
		}
		if pass == "" {
			return nil, errors.New("kafka.sasl_mechanism is set but no password: kafka.sasl_password_file or GRIDEDGE_KAFKA_PASSWORD")
		}
		opts = append(opts, kafka.WithSASL(kafka.SASL{Mechanism: k.SASLMechanism, Username: k.SASLUsername, Password: pass}))
	}
	return opts, nil
}
