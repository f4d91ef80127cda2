package collector

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gridedge/gridedge/cloud/broker"
	"github.com/gridedge/gridedge/cloud/mqttclient"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/cloud/worker"
	"github.com/gridedge/gridedge/shared/topic"
	"github.com/gridedge/gridedge/shared/wire"
)

// Config is the collector's configuration. The YAML names are the keys of
// the -config file.
type Config struct {
	// MQTTURL is the broker, tcp://host:port. Empty with EmbeddedBroker set
	// means the embedded broker.
	MQTTURL string `yaml:"mqtt_url"`
	// ClientID must be stable across restarts (the broker keeps the
	// persistent session, and the messages queued for it, under this id) and
	// unique among the collectors sharing a broker. Empty (the default)
	// means a random id generated once and kept in DataDir, so no other
	// client can predict it.
	ClientID string `yaml:"client_id"`
	// MQTTCredentialsFile holds the collector's MQTT username and password
	// as GRIDEDGE_MQTT_USERNAME=... and GRIDEDGE_MQTT_PASSWORD=... lines
	// (a systemd credential or EnvironmentFile).
	MQTTCredentialsFile string `yaml:"mqtt_credentials_file"`
	// MQTTUsername and MQTTPassword are the credentials when given
	// directly (the command reads them from the environment); never from
	// the YAML file, which may be world-readable.
	MQTTUsername string `yaml:"-"`
	MQTTPassword string `yaml:"-"`
	// ShareGroup is the shared-subscription group; collectors in one group
	// split the devices' data between them.
	ShareGroup string `yaml:"share_group"`
	// HTTPAddr is the API listen address; port 0 picks a free port. A
	// non-loopback address needs HTTPTokensFile, or HTTPAllowAnonymous.
	HTTPAddr string `yaml:"http_addr"`
	// HTTPTokensFile lists the bearer tokens of API clients (hashed;
	// managed with `gridedge-collector tokens`). With it every route but
	// /healthz needs a token.
	HTTPTokensFile string `yaml:"http_tokens_file"`
	// HTTPAllowAnonymous serves the API without tokens on a non-loopback
	// address (logged at WARN at every start).
	HTTPAllowAnonymous bool `yaml:"http_allow_anonymous"`
	// MinFreeBytes is the free space kept on the data directory's file
	// system: below it payloads are refused (not acknowledged, so agents
	// keep them), below half of it workers hold their commits. 0 disables.
	MinFreeBytes int64 `yaml:"min_free_bytes"`
	// MemoryLimitBytes is the Go runtime's soft memory limit the command
	// sets (debug.SetMemoryLimit) unless GOMEMLIMIT is set; 0 leaves it.
	MemoryLimitBytes int64 `yaml:"memory_limit_bytes"`
	// IntakeInflightBytes bounds the payload bytes taken from MQTT and not
	// yet durable and acknowledged; the MQTT client waits beyond it.
	IntakeInflightBytes int64 `yaml:"intake_inflight_bytes"`
	// MaxFuture: readings dated later than their batch's receive time plus
	// this are stored flagged future, counted, and kept out of the windows.
	MaxFuture time.Duration `yaml:"max_future"`
	// Plausibility overrides the plausibility range of quantities (by
	// name, e.g. active_power: {min: -20000, max: 20000}); readings outside
	// are stored flagged implausible, counted, and kept out of the windows.
	// A range of {min: -.inf, max: .inf} turns a quantity's check off.
	Plausibility map[string]PlausibleRange `yaml:"plausibility"`
	// ConflictLimit bounds the conflict area (resent identities with other
	// content), ConflictRetention its age.
	ConflictLimit     int           `yaml:"conflict_limit"`
	ConflictRetention time.Duration `yaml:"conflict_retention"`
	// DeviceOfflineAfter is how long a device may go unheard (no batch, no
	// status) before the fleet metrics count it offline even though its
	// last status said online.
	DeviceOfflineAfter time.Duration `yaml:"device_offline_after"`
	// MetricsDeviceLimit bounds the per-device series of /metrics
	// (gridedge_collector_device_offline_seconds: the devices that went
	// offline most recently; gridedge_dataset_device_*: the first devices
	// of each dataset pipeline, the rest summed as "_other"); 0 exports
	// none. Fleet gauges and histograms do not depend on it.
	MetricsDeviceLimit int `yaml:"metrics_device_limit"`
	// DataDir holds the readings log (log/) and the store (store/).
	DataDir string `yaml:"data_dir"`
	// EmbeddedBroker, when set, starts an MQTT broker listening there.
	EmbeddedBroker string `yaml:"embedded_broker"`
	// Broker configures the embedded broker: its device registry,
	// anonymous access, TLS listener and limits.
	Broker broker.Config `yaml:"broker"`
	// WindowSizes are the tumbling-window sizes /api/v1/windows serves:
	// each runs as a window pipeline (store.WindowPipeline) over every
	// series, with count, sum, mean, min and max.
	WindowSizes []time.Duration `yaml:"window_sizes"`
	// OutOfOrderness is how far a device's watermark trails its newest reading.
	OutOfOrderness time.Duration `yaml:"out_of_orderness"`
	// SiteTZ is the IANA time zone reported for devices whose status names none.
	SiteTZ string `yaml:"site_tz"`
	// AckTimeout bounds the wait for the broker to take an ack (PUBACK).
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// AckQueue is how many acks may wait for the publisher; beyond it acks
	// are dropped (counted) and the agent's resend brings them back.
	AckQueue int `yaml:"ack_queue"`
	// Partitions is the number of readings-log partitions, each with its
	// own worker (default: the number of cores). It is fixed when the data
	// directory is created; a different value for an existing directory is
	// an error.
	Partitions int `yaml:"partitions"`
	// DeadLetterLimit bounds the dead-letter area; the oldest go first.
	DeadLetterLimit int `yaml:"deadletter_limit"`
	// Retention per data class (0 keeps forever): raw readings by reading
	// time, results by window start, the late stream by reading time, dead
	// letters by receive time, and the readings log by append time (it is
	// also trimmed as soon as every worker has committed past a segment).
	ReadingsRetention   time.Duration `yaml:"readings_retention"`
	ResultsRetention    time.Duration `yaml:"results_retention"`
	LateRetention       time.Duration `yaml:"late_retention"`
	DeadLetterRetention time.Duration `yaml:"deadletter_retention"`
	LogRetention        time.Duration `yaml:"log_retention"`
	// Pipelines are the event-time windowing pipelines (the `pipelines:`
	// section of the file, parsed by window.ParseConfig; default
	// window.DefaultPipelines()). A pipeline without a time_zone uses
	// SiteTZ for devices whose status names no zone.
	Pipelines []window.Pipeline `yaml:"-"`
	// CommitInterval is how often the windowing engine commits its results
	// and checkpoint (also every 10,000 readings and at shutdown).
	CommitInterval time.Duration `yaml:"commit_interval"`
	// UnloadAfter: a device without a reading for this long has its
	// window state (stored at every commit) dropped from memory, and read
	// back from the store when its next reading or an idle timeout needs
	// it, so memory follows the devices that report, not every device
	// ever seen. 0 keeps every device's state in memory.
	UnloadAfter time.Duration `yaml:"unload_after"`
	// ZoneGrace is how long a worker holds, at most, the data of a device
	// it has never seen, waiting for its status (and time zone): an agent
	// may send its first batch just before its status, and calendar windows
	// keep the zone they were created with. Other devices do not wait.
	// 0 disables.
	ZoneGrace time.Duration `yaml:"zone_grace"`
	// Role is what this process runs: all (the default: intake, the local
	// readings log and its workers in one process), intake (MQTT to Kafka,
	// stateless) or worker (a Kafka consumer-group member with its store and
	// the API). See docs/deploy.md.
	Role string `yaml:"role"`
	// Kafka is the cluster's readings log, for the intake and worker roles.
	Kafka KafkaConfig `yaml:"kafka"`
	// Analytics derives anomaly bands and forecasts from a pipeline's
	// results on a schedule (default: from energy_15m every 10 minutes).
	Analytics AnalyticsConfig `yaml:"analytics"`
	// Postgres is the PostgreSQL sink (off unless its url is set).
	Postgres PostgresConfig `yaml:"postgres"`
	// FeedMaxBytes and FeedRetention bound the results feed the sinks
	// follow (written only when a sink is configured): its size on disk,
	// shared by the partitions, and its age.
	FeedMaxBytes  int64         `yaml:"feed_max_bytes"`
	FeedRetention time.Duration `yaml:"feed_retention"`
}

// DefaultConfig returns the configuration used for every field not set.
func DefaultConfig() Config {
	return Config{
		Broker:              broker.DefaultConfig(),
		ShareGroup:          "gridedge",
		HTTPAddr:            "127.0.0.1:8080",
		MinFreeBytes:        256 << 20,
		MemoryLimitBytes:    1 << 30,
		IntakeInflightBytes: 64 << 20,
		MaxFuture:           worker.DefaultMaxFuture,
		ConflictLimit:       10_000,
		ConflictRetention:   30 * 24 * time.Hour,
		DeviceOfflineAfter:  5 * time.Minute,
		MetricsDeviceLimit:  100,
		DataDir:             "gridedge-collector-data",
		WindowSizes:         []time.Duration{time.Minute},
		OutOfOrderness:      10 * time.Second,
		SiteTZ:              "UTC",
		AckTimeout:          10 * time.Second,
		AckQueue:            65536,
		DeadLetterLimit:     10_000,
		Partitions:          runtime.NumCPU(),
		ReadingsRetention:   400 * 24 * time.Hour,
		ResultsRetention:    5 * 366 * 24 * time.Hour,
		LateRetention:       90 * 24 * time.Hour,
		DeadLetterRetention: 30 * 24 * time.Hour,
		LogRetention:        7 * 24 * time.Hour,
		Pipelines:           window.DefaultPipelines(),
		CommitInterval:      time.Second,
		UnloadAfter:         5 * time.Minute,
		ZoneGrace:           2 * time.Second,
		Role:                RoleAll,
		Kafka:               DefaultKafkaConfig(),
		Analytics:           DefaultAnalyticsConfig(),
		Postgres:            DefaultPostgresConfig(),
		FeedMaxBytes:        256 << 20,
		FeedRetention:       24 * time.Hour,
	}
}

// LoadConfig reads a YAML file over DefaultConfig. Unknown keys are errors,
// so a misspelt key is not silently ignored.
func LoadConfig(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return DefaultConfig(), fmt.Errorf("config: %w", err)
	}
	return ParseConfig(raw, path)
}

// ParseConfig reads a YAML configuration over DefaultConfig; name is the
// file's name in errors. It does not validate the result (Validate does).
func ParseConfig(raw []byte, name string) (Config, error) {
	path := name
	cfg := DefaultConfig()
	file := struct {
		Config    `yaml:",inline"`
		Pipelines yaml.Node `yaml:"pipelines"`
	}{Config: cfg}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF and means "all defaults".
	if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	cfg = file.Config
	if file.Pipelines.Kind != 0 {
		pipes, err := window.ParseConfig(pipelinesSection(raw))
		if err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
		cfg.Pipelines = pipes
	}
	return cfg, nil
}

// LoadPipelines reads a window configuration file (time_zone and
// pipelines, the format of cloud/window/default.yaml).
func LoadPipelines(path string) ([]window.Pipeline, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pipelines: %w", err)
	}
	pipes, err := window.ParseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("pipelines %s: %w", path, err)
	}
	return pipes, nil
}

// pipelinesSection blanks every line of a collector configuration file
// that is not part of its top-level pipelines key, so window.ParseConfig
// reads only that section and its errors name the file's own line numbers.
func pipelinesSection(raw []byte) []byte {
	lines := bytes.SplitAfter(raw, []byte("\n"))
	inSection := false
	for i, line := range lines {
		top := len(line) > 0 && line[0] != ' ' && line[0] != '\t' && line[0] != '#' && line[0] != '\n' && line[0] != '\r' && line[0] != '-'
		if top {
			inSection = bytes.HasPrefix(line, []byte("pipelines:"))
		}
		if !inSection {
			lines[i] = []byte("\n")
		}
	}
	return bytes.Join(lines, nil)
}

// Validate reports the first field that is wrong, naming it by its YAML key.
func (c Config) Validate() error {
	if err := c.validateRole(); err != nil {
		return err
	}
	if c.MQTTURL == "" && c.EmbeddedBroker == "" && c.Role != RoleWorker && c.Role != RoleSink {
		return errors.New("mqtt_url: required unless embedded_broker is set (e.g. tcp://127.0.0.1:1883)")
	}
	if c.MQTTURL != "" {
		u, err := url.Parse(c.MQTTURL)
		if err != nil || u.Host == "" {
			return fmt.Errorf("mqtt_url %q: want scheme://host:port, e.g. tcp://127.0.0.1:1883", mqttclient.Redact(c.MQTTURL))
		}
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
		default:
			return fmt.Errorf("mqtt_url %q: scheme %q not supported (tcp, ssl, ws, wss)", mqttclient.Redact(c.MQTTURL), u.Scheme)
		}
	}
	if len(c.ClientID) > 128 || strings.ContainsAny(c.ClientID, "/+#") {
		return fmt.Errorf("client_id %q: must be at most 128 characters without / + # (empty: generated and kept in data_dir)", c.ClientID)
	}
	if c.EmbeddedBroker != "" {
		if err := c.Broker.Validate(); err != nil {
			return err
		}
	}
	if err := topic.ValidateSite(c.ShareGroup); err != nil {
		return fmt.Errorf("share_group %q: must use A-Z a-z 0-9 . _ - only", c.ShareGroup)
	}
	if err := c.validateHTTP(); err != nil {
		return err
	}
	if c.MinFreeBytes < 0 {
		return fmt.Errorf("min_free_bytes: %d must not be negative (0 disables the reserve)", c.MinFreeBytes)
	}
	if c.MemoryLimitBytes != 0 && c.MemoryLimitBytes < 64<<20 {
		return fmt.Errorf("memory_limit_bytes: %d is below 64 MiB (67108864); 0 leaves the Go default", c.MemoryLimitBytes)
	}
	if c.IntakeInflightBytes < 2<<20 {
		return fmt.Errorf("intake_inflight_bytes: %d is below 2 MiB (2097152), the largest payload accepted", c.IntakeInflightBytes)
	}
	if c.MaxFuture < time.Second {
		return fmt.Errorf("max_future: %v must be at least 1s", c.MaxFuture)
	}
	if _, err := c.Limits(); err != nil {
		return err
	}
	if c.ConflictLimit < 1 {
		return fmt.Errorf("conflict_limit: %d must be at least 1", c.ConflictLimit)
	}
	if c.ConflictRetention < 0 {
		return fmt.Errorf("conflict_retention: %v must not be negative (0 keeps until conflict_limit)", c.ConflictRetention)
	}
	if c.DeviceOfflineAfter < time.Second {
		return fmt.Errorf("device_offline_after: %v must be at least 1s", c.DeviceOfflineAfter)
	}
	if c.MetricsDeviceLimit < 0 || c.MetricsDeviceLimit > MaxMetricsDeviceLimit {
		return fmt.Errorf("metrics_device_limit: %d must be between 0 and %d", c.MetricsDeviceLimit, MaxMetricsDeviceLimit)
	}
	if c.DataDir == "" {
		return errors.New("data_dir: required")
	}
	if len(c.WindowSizes) == 0 {
		return errors.New("window_sizes: at least one size is required, e.g. [1m, 15m]")
	}
	seen := map[time.Duration]bool{}
	for _, d := range c.WindowSizes {
		if d < time.Second || d > 31*24*time.Hour {
			return fmt.Errorf("window_sizes: %v is outside 1s..744h", d)
		}
		if seen[d] {
			return fmt.Errorf("window_sizes: %v is listed twice", d)
		}
		seen[d] = true
	}
	if c.OutOfOrderness < 0 {
		return fmt.Errorf("out_of_orderness: %v must not be negative", c.OutOfOrderness)
	}
	if _, err := time.LoadLocation(c.SiteTZ); err != nil || c.SiteTZ == "" {
		return fmt.Errorf("site_tz %q: not an IANA time zone (e.g. Europe/Paris, UTC)", c.SiteTZ)
	}
	if c.AckTimeout <= 0 {
		return fmt.Errorf("ack_timeout: %v must be positive", c.AckTimeout)
	}
	if c.AckQueue < 1 {
		return fmt.Errorf("ack_queue: %d must be at least 1", c.AckQueue)
	}
	if c.Partitions < 1 || c.Partitions > 1024 {
		return fmt.Errorf("partitions: %d is outside 1..1024", c.Partitions)
	}
	for name, d := range map[string]time.Duration{"readings_retention": c.ReadingsRetention, "results_retention": c.ResultsRetention,
		"late_retention": c.LateRetention, "deadletter_retention": c.DeadLetterRetention, "log_retention": c.LogRetention} {
		if d < 0 {
			return fmt.Errorf("%s: %v must not be negative (0 keeps forever)", name, d)
		}
	}
	if c.DeadLetterLimit < 1 {
		return fmt.Errorf("deadletter_limit: %d must be at least 1", c.DeadLetterLimit)
	}
	if len(c.Pipelines) == 0 {
		return errors.New("pipelines: at least one window pipeline is required (absent means the shipped defaults)")
	}
	for i := range c.Pipelines {
		if err := c.Pipelines[i].Validate(); err != nil {
			return fmt.Errorf("pipelines: %w", err)
		}
	}
	if c.CommitInterval < 10*time.Millisecond || c.CommitInterval > time.Hour {
		return fmt.Errorf("commit_interval: %v is outside 10ms..1h", c.CommitInterval)
	}
	if c.UnloadAfter < 0 {
		return fmt.Errorf("unload_after: %v is negative", c.UnloadAfter)
	}
	if c.ZoneGrace < 0 || c.ZoneGrace > time.Minute {
		return fmt.Errorf("zone_grace: %v is outside 0..1m", c.ZoneGrace)
	}
	if c.Role != RoleIntake {
		if err := c.Analytics.validate(collectorPipelines(c), c.SiteTZ); err != nil {
			return err
		}
	}
	return c.validateFeed()
}

// PlausibleRange is a quantity's plausibility range in the configuration.
type PlausibleRange struct {
	Min float64 `yaml:"min"`
	Max float64 `yaml:"max"`
}

// Limits returns the plausibility ranges in force: worker.DefaultLimits
// with the configured ones replacing theirs.
func (c Config) Limits() (worker.Limits, error) {
	lim := worker.DefaultLimits()
	names := make([]string, 0, len(c.Plausibility))
	for name := range c.Plausibility {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		r := c.Plausibility[name]
		q, err := wire.ParseQuantity(name)
		if err != nil {
			return nil, fmt.Errorf("plausibility: %w", err)
		}
		if math.IsNaN(r.Min) || math.IsNaN(r.Max) || !(r.Min < r.Max) {
			return nil, fmt.Errorf("plausibility: %s: min %v must be below max %v", name, r.Min, r.Max)
		}
		if math.IsInf(r.Min, -1) && math.IsInf(r.Max, 1) {
			delete(lim, q)
			continue
		}
		lim[q] = worker.Range{Min: r.Min, Max: r.Max}
	}
	return lim, nil
}

// validateHTTP checks http_addr and refuses a non-loopback address without
// tokens, unless http_allow_anonymous says so.
func (c Config) validateHTTP() error {
	if c.HTTPAddr == "" {
		return errors.New("http_addr: required (host:port, port 0 picks a free one)")
	}
	host, _, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http_addr %q: want host:port, e.g. 127.0.0.1:8080", c.HTTPAddr)
	}
	// An intake node serves only /healthz and /metrics, no data.
	if c.Role != RoleIntake && !IsLoopback(host) && c.HTTPTokensFile == "" && !c.HTTPAllowAnonymous {
		return fmt.Errorf("http_addr %q: not a loopback address, and no http_tokens_file: anyone who reaches it could read every "+
			"reading; create tokens with `gridedge-collector tokens add -tokens-file FILE -role read NAME` and set "+
			"http_tokens_file (-http-tokens-file), bind 127.0.0.1, or set http_allow_anonymous (-http-allow-anonymous) to serve it openly", c.HTTPAddr)
	}
	return nil
}

// IsLoopback reports whether host (of a listen address) binds only the
// loopback interface: localhost or a loopback IP. An empty host binds
// every interface.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
