// Command gridedge-collector receives metering batches from gridedge agents
// over MQTT, deduplicates and stores them durably, acknowledges them end to
// end, runs the event-time windowing pipelines over them and serves readings,
// windows and results over HTTP.
//
//	gridedge-collector devices add -data-dir ./data site-1/gw-0001
//	gridedge-collector tokens add -tokens-file /etc/gridedge/api-tokens -role read grafana
//	gridedge-collector -embedded-broker 127.0.0.1:1883 -data-dir ./data
//	gridedge-collector -config collector.yaml -mqtt-credentials-file /run/credentials/gridedge-collector.service/mqtt
//
// Flags override the configuration file; see -h. The MQTT credentials come
// from -mqtt-credentials-file or the environment (GRIDEDGE_MQTT_USERNAME,
// GRIDEDGE_MQTT_PASSWORD), never from the command line; so does the
// PostgreSQL sink's password (-postgres-password-file or
// GRIDEDGE_POSTGRES_PASSWORD).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/gridedge/gridedge/cloud/collector"
	"github.com/gridedge/gridedge/cloud/mqttclient"
	"github.com/gridedge/gridedge/shared/atomicfile"
)

func main() {
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "devices":
		err = runDevices(os.Args[2:], os.Stdout, os.Stderr)
	case len(os.Args) > 1 && os.Args[1] == "tokens":
		err = runTokens(os.Args[2:], os.Stdout, os.Stderr)
	default:
		err = run(os.Args[1:], os.Stderr)
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "gridedge-collector:", err)
		os.Exit(2)
	}
}

func run(args []string, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "migrate" {
		return migrate(args[1:], stderr)
	}
	cfg, opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: opts.logLevel}))
	setMemoryLimit(cfg.MemoryLimitBytes, log)
	c, err := newNode(cfg, collector.WithLogger(log))
	if err != nil {
		return err
	}
	log.Info("gridedge-collector listening", "http", c.HTTPAddr(), "mqtt", c.MQTTURL())
	if opts.httpAddrFile != "" {
		if err := atomicfile.Write(opts.httpAddrFile, []byte(c.HTTPAddr()+"\n")); err != nil {
			c.Close()
			return fmt.Errorf("-http-addr-file: %w", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return c.Run(ctx)
}

// setMemoryLimit applies memory_limit_bytes as the Go runtime's soft
// memory limit, unless the GOMEMLIMIT environment variable already set one.
func setMemoryLimit(n int64, log *slog.Logger) {
	if env := os.Getenv("GOMEMLIMIT"); env != "" {
		log.Info("memory limit from GOMEMLIMIT; memory_limit_bytes not applied", "GOMEMLIMIT", env)
		return
	}
	if n > 0 {
		debug.SetMemoryLimit(n)
		log.Info("memory limit set", "memory_limit_bytes", n)
	}
}

// processOptions are flags that are not collector configuration.
type processOptions struct {
	logLevel     slog.Level
	httpAddrFile string
}

// parseFlags loads -config (if given) and applies every flag the user set on
// top of it, so flags override the file and the file overrides defaults.
func parseFlags(args []string, out io.Writer) (collector.Config, processOptions, error) {
	fs := flag.NewFlagSet("gridedge-collector", flag.ContinueOnError)
	// A bad flag is returned and printed once by main, without the usage
	// text; -h prints the usage.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	def := collector.DefaultConfig()
	var (
		configPath     = fs.String("config", "", "YAML configuration file (keys: role, kafka, mqtt_url, mqtt_credentials_file, client_id, share_group, http_addr, http_tokens_file, http_allow_anonymous, data_dir, min_free_bytes, memory_limit_bytes, intake_inflight_bytes, max_future, plausibility, conflict_limit, conflict_retention, embedded_broker, broker, window_sizes, out_of_orderness, site_tz, ack_timeout, ack_queue, deadletter_limit, partitions, readings_retention, results_retention, late_retention, deadletter_retention, log_retention, commit_interval, unload_after, zone_grace, pipelines, postgres, feed_max_bytes, feed_retention); flags override it")
		mqttURL        = fs.String("mqtt-url", def.MQTTURL, "MQTT broker, tcp://host:port (default: the embedded broker when -embedded-broker is set); put credentials in -mqtt-credentials-file, not here")
		mqttCredFile   = fs.String("mqtt-credentials-file", def.MQTTCredentialsFile, "file with GRIDEDGE_MQTT_USERNAME=... and GRIDEDGE_MQTT_PASSWORD=... lines (systemd LoadCredential or EnvironmentFile); without it those environment variables are used")
		clientID       = fs.String("client-id", def.ClientID, "MQTT client id; must stay the same across restarts (the broker keeps the session under it) and differ between collectors (default: random, generated once and kept in the data directory)")
		shareGroup     = fs.String("share-group", def.ShareGroup, "MQTT shared-subscription group; collectors in one group split the devices' data")
		httpAddr       = fs.String("http-addr", def.HTTPAddr, "HTTP API listen address (port 0 picks a free port); an address other than loopback needs -http-tokens-file (or -http-allow-anonymous)")
		httpTokens     = fs.String("http-tokens-file", def.HTTPTokensFile, "API bearer tokens (hashed), managed with `gridedge-collector tokens`; with it every route but /healthz needs a token")
		httpAnonymous  = fs.Bool("http-allow-anonymous", false, "serve the API without tokens on a non-loopback -http-addr (anyone who reaches it reads everything; logged at WARN)")
		minFree        = fs.Int64("min-free-bytes", def.MinFreeBytes, "free space kept on the data directory's file system: below it batches are refused (not acknowledged; agents keep them) until space returns; 0 disables")
		memLimit       = fs.Int64("memory-limit-bytes", def.MemoryLimitBytes, "Go soft memory limit (ignored when GOMEMLIMIT is set); 0 leaves the runtime's default")
		maxFuture      = fs.Duration("max-future", def.MaxFuture, "readings dated later than their receive time plus this are stored flagged and kept out of the windows")
		dataDir        = fs.String("data-dir", def.DataDir, "data directory (readings log, store, MQTT client id, devices registry)")
		embedded       = fs.String("embedded-broker", def.EmbeddedBroker, "start an embedded MQTT broker listening on this address, e.g. 127.0.0.1:1883; clients authenticate against -devices-file")
		devicesFile    = fs.String("devices-file", def.Broker.DevicesFile, "the embedded broker's MQTT identities, managed with `gridedge-collector devices` (default: \"devices\" in the data directory)")
		anonymous      = fs.Bool("allow-anonymous", false, "let clients of the embedded broker connect without credentials and use any topic (development only: anyone can then forge readings and acks)")
		tlsListener    = fs.String("embedded-broker-tls", def.Broker.TLSListener, "also serve MQTT over TLS on this address, e.g. 0.0.0.0:8883 (with -embedded-broker-tls-cert and -key)")
		tlsCert        = fs.String("embedded-broker-tls-cert", def.Broker.TLSCert, "PEM certificate (chain) of the TLS listener")
		tlsKey         = fs.String("embedded-broker-tls-key", def.Broker.TLSKey, "PEM private key of the TLS listener")
		windowSizes    = fs.String("window-sizes", joinDurations(def.WindowSizes), "comma-separated tumbling-window sizes, e.g. 1m,15m")
		outOfOrderness = fs.Duration("out-of-orderness", def.OutOfOrderness, "how far a device's watermark trails its newest reading; a window closes when the watermark passes its end")
		siteTZ         = fs.String("site-tz", def.SiteTZ, "IANA time zone reported for devices whose status names none")
		ackTimeout     = fs.Duration("ack-timeout", def.AckTimeout, "how long to wait for the broker to take an end-to-end ack")
		ackQueue       = fs.Int("ack-queue", def.AckQueue, "acks waiting to be published before new ones are dropped (the agent's resend recovers them)")
		partitions     = fs.Int("partitions", def.Partitions, "readings-log partitions, one worker each (default: the number of cores); fixed when the data directory is created")
		pipelinesPath  = fs.String("pipelines", "", "window pipelines file (time_zone and pipelines, like cloud/window/default.yaml); overrides the pipelines section of -config; default: the shipped pipelines power_1m, energy_15m, energy_daily, appliance_sessions, power_snapshots")
		commitEvery    = fs.Duration("commit-interval", def.CommitInterval, "how often the windowing engine commits results and its checkpoint")
		zoneGrace      = fs.Duration("zone-grace", def.ZoneGrace, "how long the windowing engine waits for a new device's status (its time zone) before applying its readings; 0 disables")
		deadLetters    = fs.Int("deadletter-limit", def.DeadLetterLimit, "dead letters kept (rejected payloads, for diagnosis); the oldest are deleted beyond it")
		role           = fs.String("role", def.Role, "what this process runs: all (intake, local log and workers in one process), intake (MQTT to Kafka, stateless) worker (Kafka consumer-group member: windows, state and outputs in Kafka transactions) or sink (follows the workers' output topics into its store and serves the API for every partition)")
		kafkaBrokers   = fs.String("kafka-brokers", "", "comma-separated Kafka seed brokers host:port (roles intake and worker)")
		kafkaTopic     = fs.String("kafka-topic", def.Kafka.Topic, "Kafka readings topic")
		kafkaParts     = fs.Int("kafka-partitions", def.Kafka.Partitions, "partitions of the readings topic when this node creates it; an existing topic must have this many")
		kafkaInstance  = fs.String("kafka-instance-id", def.Kafka.InstanceID, "static consumer-group membership id of a worker (e.g. the StatefulSet pod name): a restart within the session timeout keeps its partitions")
		kafkaTLS       = fs.Bool("kafka-tls", false, "connect to Kafka over TLS")
		kafkaTLSCA     = fs.String("kafka-tls-ca", "", "PEM CA bundle for the Kafka brokers' certificates (default: system roots)")
		kafkaTLSCert   = fs.String("kafka-tls-cert", "", "PEM client certificate for Kafka (with -kafka-tls-key)")
		kafkaTLSKey    = fs.String("kafka-tls-key", "", "PEM client key for Kafka")
		kafkaSASL      = fs.String("kafka-sasl-mechanism", "", "Kafka SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		kafkaSASLUser  = fs.String("kafka-sasl-username", "", "Kafka SASL username")
		kafkaSASLFile  = fs.String("kafka-sasl-password-file", "", "file whose first line is the Kafka SASL password (default: GRIDEDGE_KAFKA_PASSWORD from the environment)")
		pgURL          = fs.String("postgres-url", "", "PostgreSQL sink: postgres://user@host:5432/database?sslmode=...; results, late readings, devices and statuses are written there (docs/postgres.md); the password goes in -postgres-password-file or GRIDEDGE_POSTGRES_PASSWORD, not here")
		pgPassFile     = fs.String("postgres-password-file", "", "file whose first line is the PostgreSQL password (default: GRIDEDGE_POSTGRES_PASSWORD from the environment)")
		pgHistory      = fs.Bool("postgres-history", false, "also write every revision of every window to gridedge.result_history")
		pgServeAPI     = fs.Bool("postgres-serve-api", false, "serve /api/v1/results, /api/v1/late and /api/v1/devices from PostgreSQL (in a cluster every worker node then answers for every partition)")
		pgReadings     = fs.Bool("postgres-readings", false, "also write every raw reading to gridedge.readings (day partitions, dropped after postgres.readings_retention, default 30d)")
		logLevel       = fs.String("log-level", "info", "debug, info, warn or error")
		httpAddrFile   = fs.String("http-addr-file", "", "write the bound HTTP address (host:port) to this file once listening; useful with -http-addr 127.0.0.1:0")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(out, "Usage: gridedge-collector [flags]\n\nReceives gridedge agent batches over MQTT, stores them durably (deduplicated),\nacknowledges them end to end and serves windows over HTTP.\n\nFlags:")
			fs.SetOutput(out)
			fs.PrintDefaults()
			return collector.Config{}, processOptions{}, err
		}
		return collector.Config{}, processOptions{}, fmt.Errorf("%w (gridedge-collector -h lists the flags)", err)
	}
	if fs.NArg() > 0 {
		return collector.Config{}, processOptions{}, fmt.Errorf("unexpected argument %q (all settings are flags)", fs.Arg(0))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return collector.Config{}, processOptions{}, fmt.Errorf("-log-level %q: want debug, info, warn or error", *logLevel)
	}
	cfg := def
	if *configPath != "" {
		var err error
		if cfg, err = collector.LoadConfig(*configPath); err != nil {
			return collector.Config{}, processOptions{}, err
		}
	}
	var ferr error
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "mqtt-url":
			cfg.MQTTURL = *mqttURL
		case "mqtt-credentials-file":
			cfg.MQTTCredentialsFile = *mqttCredFile
		case "devices-file":
			cfg.Broker.DevicesFile = *devicesFile
		case "allow-anonymous":
			cfg.Broker.AllowAnonymous = *anonymous
		case "embedded-broker-tls":
			cfg.Broker.TLSListener = *tlsListener
		case "embedded-broker-tls-cert":
			cfg.Broker.TLSCert = *tlsCert
		case "embedded-broker-tls-key":
			cfg.Broker.TLSKey = *tlsKey
		case "client-id":
			cfg.ClientID = *clientID
		case "share-group":
			cfg.ShareGroup = *shareGroup
		case "http-addr":
			cfg.HTTPAddr = *httpAddr
		case "http-tokens-file":
			cfg.HTTPTokensFile = *httpTokens
		case "http-allow-anonymous":
			cfg.HTTPAllowAnonymous = *httpAnonymous
		case "min-free-bytes":
			cfg.MinFreeBytes = *minFree
		case "memory-limit-bytes":
			cfg.MemoryLimitBytes = *memLimit
		case "max-future":
			cfg.MaxFuture = *maxFuture
		case "data-dir":
			cfg.DataDir = *dataDir
		case "embedded-broker":
			cfg.EmbeddedBroker = *embedded
		case "window-sizes":
			sizes, err := parseDurations(*windowSizes)
			if err != nil {
				ferr = fmt.Errorf("-window-sizes: %w", err)
			}
			cfg.WindowSizes = sizes
		case "out-of-orderness":
			cfg.OutOfOrderness = *outOfOrderness
		case "site-tz":
			cfg.SiteTZ = *siteTZ
		case "ack-timeout":
			cfg.AckTimeout = *ackTimeout
		case "ack-queue":
			cfg.AckQueue = *ackQueue
		case "partitions":
			cfg.Partitions = *partitions
		case "deadletter-limit":
			cfg.DeadLetterLimit = *deadLetters
		case "commit-interval":
			cfg.CommitInterval = *commitEvery
		case "zone-grace":
			cfg.ZoneGrace = *zoneGrace
		case "role":
			cfg.Role = *role
		case "kafka-brokers":
			cfg.Kafka.Brokers = splitList(*kafkaBrokers)
		case "kafka-topic":
			cfg.Kafka.Topic = *kafkaTopic
		case "kafka-partitions":
			cfg.Kafka.Partitions = *kafkaParts
		case "kafka-instance-id":
			cfg.Kafka.InstanceID = *kafkaInstance
		case "kafka-tls":
			cfg.Kafka.TLS = *kafkaTLS
		case "kafka-tls-ca":
			cfg.Kafka.TLSCA = *kafkaTLSCA
		case "kafka-tls-cert":
			cfg.Kafka.TLSCert = *kafkaTLSCert
		case "kafka-tls-key":
			cfg.Kafka.TLSKey = *kafkaTLSKey
		case "kafka-sasl-mechanism":
			cfg.Kafka.SASLMechanism = *kafkaSASL
		case "kafka-sasl-username":
			cfg.Kafka.SASLUsername = *kafkaSASLUser
		case "kafka-sasl-password-file":
			cfg.Kafka.SASLPasswordFile = *kafkaSASLFile
		case "postgres-url":
			cfg.Postgres.URL = *pgURL
		case "postgres-password-file":
			cfg.Postgres.PasswordFile = *pgPassFile
		case "postgres-history":
			cfg.Postgres.History = *pgHistory
		case "postgres-serve-api":
			cfg.Postgres.ServeAPI = *pgServeAPI
		case "postgres-readings":
			cfg.Postgres.Readings = *pgReadings
		case "pipelines":
			pipes, err := collector.LoadPipelines(*pipelinesPath)
			if err != nil {
				ferr = fmt.Errorf("-pipelines: %w", err)
			}
			cfg.Pipelines = pipes
		}
	})
	if ferr != nil {
		return collector.Config{}, processOptions{}, ferr
	}
	if cfg.MQTTCredentialsFile == "" {
		cred, err := mqttclient.FromEnv(os.Getenv)
		if err != nil {
			return collector.Config{}, processOptions{}, err
		}
		cfg.MQTTUsername, cfg.MQTTPassword = cred.Username, cred.Password
	}
	if cfg.Postgres.PasswordFile == "" {
		cfg.Postgres.Password = os.Getenv("GRIDEDGE_POSTGRES_PASSWORD")
	}
	if cfg.Kafka.SASLPasswordFile == "" {
		cfg.Kafka.SASLPassword = os.Getenv("GRIDEDGE_KAFKA_PASSWORD")
	}
	if err := cfg.Validate(); err != nil {
		return collector.Config{}, processOptions{}, fmt.Errorf("configuration: %w", err)
	}
	return cfg, processOptions{logLevel: level, httpAddrFile: *httpAddrFile}, nil
}

// node is a collector process of any role.
type node interface {
	Run(ctx context.Context) error
	HTTPAddr() string
	MQTTURL() string
	Close() error
}

// newNode builds the process cfg.Role names.
func newNode(cfg collector.Config, opts ...collector.Option) (node, error) {
	switch cfg.Role {
	case collector.RoleIntake:
		return collector.NewIntake(cfg, opts...)
	case collector.RoleWorker:
		return collector.NewWorker(cfg, opts...)
	case collector.RoleSink:
		return collector.NewSink(cfg, opts...)
	default:
		return collector.New(cfg, opts...)
	}
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func parseDurations(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		d, err := time.ParseDuration(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration (e.g. 1m, 15m, 1h)", part)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, errors.New("at least one size is required")
	}
	return out, nil
}

func joinDurations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}
