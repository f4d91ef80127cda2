package collector

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoleAndKafkaSettingsAreValidated(t *testing.T) {
	ok := DefaultConfig()
	ok.MQTTURL = "tcp://127.0.0.1:1883"
	ok.Role = RoleIntake
	ok.Kafka.Brokers = []string{"kafka:9092"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	worker := ok
	worker.Role, worker.MQTTURL = RoleWorker, ""
	if err := worker.Validate(); err != nil {
		t.Fatalf("a worker needs no MQTT: %v", err)
	}
	sink := worker
	sink.Role = RoleSink
	if err := sink.Validate(); err != nil {
		t.Fatalf("a sink needs no MQTT: %v", err)
	}
	for want, change := range map[string]func(*Config){
		"role":                      func(c *Config) { c.Role = "reader" },
		"kafka.brokers":             func(c *Config) { c.Kafka.Brokers = nil },
		"not host:port":             func(c *Config) { c.Kafka.Brokers = []string{"kafka"} },
		"kafka.partitions":          func(c *Config) { c.Kafka.Partitions = 0 },
		"kafka.session_timeout":     func(c *Config) { c.Kafka.SessionTimeout = 0 },
		"tls_key":                   func(c *Config) { c.Kafka.TLS, c.Kafka.TLSCert = true, "c.pem" },
		"need tls":                  func(c *Config) { c.Kafka.TLSCA = "ca.pem" },
		"sasl_mechanism":            func(c *Config) { c.Kafka.SASLMechanism = "GSSAPI" },
		"username":                  func(c *Config) { c.Kafka.SASLMechanism = "PLAIN" },
		"embedded_broker":           func(c *Config) { c.EmbeddedBroker = "127.0.0.1:1883" },
		"deadletter_topic":          func(c *Config) { c.Kafka.DeadLetterTopic = c.Kafka.Topic },
		"results_topic":             func(c *Config) { c.Kafka.ResultsTopic = c.Kafka.LateTopic },
		"kafka.raw_topic: required": func(c *Config) { c.Kafka.RawTopic = "" },
	} {
		c := ok
		change(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v", want, err)
		}
	}
	// The SASL password comes from a file (first line) and is required.
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := ok
	c.Kafka.SASLMechanism, c.Kafka.SASLUsername = "SCRAM-SHA-512", "gridedge"
	if _, err := kafkaOptions(c, testLogger(t)); err == nil || !strings.Contains(err.Error(), "no password") {
		t.Errorf("SASL without a password: %v", err)
	}
	c.Kafka.SASLPasswordFile = pw
	if _, err := kafkaOptions(c, testLogger(t)); err != nil {
		t.Error(err)
	}
	c.Kafka.TLS, c.Kafka.TLSCA = true, pw
	if _, err := kafkaOptions(c, testLogger(t)); err == nil || !strings.Contains(err.Error(), "no PEM") {
		t.Errorf("a CA file without a certificate: %v", err)
	}
}

func TestLoadConfigReadsTheKafkaSection(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("role: worker\nkafka:\n  brokers: [a:9092, b:9092]\n  partitions: 32\n  instance_id: w-0\n  session_timeout: 30s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Role != RoleWorker || len(cfg.Kafka.Brokers) != 2 || cfg.Kafka.Partitions != 32 || cfg.Kafka.InstanceID != "w-0" ||
		cfg.Kafka.SessionTimeout.Seconds() != 30 || cfg.Kafka.Topic != "gridedge.readings" {
		t.Fatalf("loaded %+v %+v", cfg.Role, cfg.Kafka)
	}
	if err := os.WriteFile(p, []byte("kafka:\n  brokerz: [a:9092]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(p); err == nil {
		t.Fatal("misspelt kafka key: no error")
	}
}
