package collector

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridedge/gridedge/cloud/api"
	"github.com/gridedge/gridedge/cloud/feed"
	"github.com/gridedge/gridedge/cloud/sink/postgres"
	"github.com/gridedge/gridedge/cloud/store"
)

// PostgresConfig configures the PostgreSQL sink (docs/postgres.md): on
// when URL is set.
type PostgresConfig struct {
	// URL is the database, postgres://user@host:5432/db?sslmode=...,
	// without the password (it would show in process listings and logs).
	URL string `yaml:"url"`
	// PasswordFile holds the password on its first line; without it the
	// command takes GRIDEDGE_POSTGRES_PASSWORD from the environment.
	PasswordFile string `yaml:"password_file"`
	Password     string `yaml:"-"`
	// History also writes every revision of every window
	// (gridedge.result_history).
	History bool `yaml:"history"`
	// Readings also writes every stored raw reading to gridedge.readings,
	// in day partitions dropped after ReadingsRetention.
	Readings          bool          `yaml:"readings"`
	ReadingsRetention time.Duration `yaml:"readings_retention"`
	// BatchRecords bounds the feed records per transaction; MaxConns the
	// connections.
	BatchRecords int `yaml:"batch_records"`
	MaxConns     int `yaml:"max_conns"`
	// ServeAPI serves /api/v1/results, /api/v1/late and /api/v1/devices
	// from PostgreSQL instead of this process's store: in the cluster
	// wiring every worker node then answers for every partition.
	ServeAPI bool `yaml:"serve_api"`
}

// DefaultPostgresConfig is the sink's configuration when not set: off.
func DefaultPostgresConfig() PostgresConfig {
	return PostgresConfig{BatchRecords: 5000, MaxConns: 4, ReadingsRetention: 30 * 24 * time.Hour}
}

// Validate checks the sink's settings.
func (p PostgresConfig) Validate() error {
	if p.URL == "" {
		if p.ServeAPI {
			return errors.New("postgres.serve_api: needs postgres.url")
		}
		return nil
	}
	u, err := url.Parse(p.URL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return fmt.Errorf("postgres.url %q: want postgres://user@host:5432/database", postgres.Redact(p.URL))
	}
	if p.BatchRecords < 1 || p.BatchRecords > 100_000 {
		return fmt.Errorf("postgres.batch_records: %d is outside 1..100000", p.BatchRecords)
	}
	if p.Readings && p.ReadingsRetention < 24*time.Hour {
		return fmt.Errorf("postgres.readings_retention: %v must be at least 24h (whole day partitions are dropped)", p.ReadingsRetention)
	}
	if p.MaxConns < 1 || p.MaxConns > 64 {
		return fmt.Errorf("postgres.max_conns: %d is outside 1..64", p.MaxConns)
	}
	return nil
}

// FeedRetention is the results feed's bound: feed_max_bytes shared by the
// partitions, and feed_retention.
func (c Config) feedRetention() store.FeedRetention {
	return store.FeedRetention{MaxBytes: c.FeedMaxBytes / int64(max(c.Partitions, 1)), MaxAge: c.FeedRetention}
}

// sinksOn says whether a sink follows the results feed (so the store writes
// it).
func (c Config) sinksOn() bool { return c.Postgres.URL != "" }

func (c Config) validateFeed() error {
	if c.FeedMaxBytes < 1<<20 {
		return fmt.Errorf("feed_max_bytes: %d is below 1 MiB (1048576)", c.FeedMaxBytes)
	}
	if c.FeedRetention < time.Minute {
		return fmt.Errorf("feed_retention: %v must be at least 1m", c.FeedRetention)
	}
	return c.Postgres.Validate()
}

// storeOptions are the store options the configuration asks for: the
// results feed when a sink follows it.
func (c Config) storeOptions(log *slog.Logger) []store.Option {
	opts := []store.Option{store.WithLogger(log)}
	if c.sinksOn() {
		opts = append(opts, store.WithFeed(c.feedRetention()))
	}
	if c.Postgres.URL != "" && c.Postgres.Readings {
		opts = append(opts, store.WithFeedReadings())
	}
	return opts
}

// password is the sink's password: the first line of password_file, or
// the one given (from the environment).
func (p PostgresConfig) password() (string, error) {
	if p.PasswordFile == "" {
		return p.Password, nil
	}
	b, err := os.ReadFile(p.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("postgres.password_file: %w", err)
	}
	pass, _, _ := strings.Cut(string(b), "\n")
	pass = strings.TrimRight(pass, "\r")
	if pass == "" {
		return "", errors.New("postgres.password_file: the first line is empty")
	}
	return pass, nil
}

// newPostgresSink builds the PostgreSQL sink of st's feed (nil when off).
func newPostgresSink(c Config, st *store.Store, partitions int, log *slog.Logger) (*postgres.Sink, error) {
	p := c.Postgres
	if p.URL == "" {
		return nil, nil
	}
	pass, err := p.password()
	if err != nil {
		return nil, err
	}
	if u, err := url.Parse(p.URL); err == nil {
		if _, ok := u.User.Password(); ok || u.Query().Has("password") {
			log.Warn("postgres.url carries a password: it shows in process listings; use postgres.password_file or GRIDEDGE_POSTGRES_PASSWORD",
				"url", postgres.Redact(p.URL))
		}
	}
	opts := []postgres.Option{postgres.WithPassword(pass), postgres.WithHistory(p.History),
		postgres.WithBatch(p.BatchRecords), postgres.WithMaxConns(int32(p.MaxConns)), postgres.WithLogger(log)}
	if p.Readings {
		opts = append(opts, postgres.WithReadings(p.ReadingsRetention))
	}
	var fopts []feed.LocalOption
	if p.Readings {
		fopts = append(fopts, feed.WithResyncReadings(p.ReadingsRetention))
	}
	return postgres.New(feed.NewLocal(st, partitions, fopts...), p.URL, opts...)
}

// postgresAPI returns the API option serving results, late readings and
// devices from PostgreSQL (postgres.serve_api), and the reader to close.
func postgresAPI(c Config) ([]api.Option, *postgres.Reader, error) {
	if !c.Postgres.ServeAPI || c.Postgres.URL == "" {
		return nil, nil, nil
	}
	pass, err := c.Postgres.password()
	if err != nil {
		return nil, nil, err
	}
	r, err := postgres.NewReader(c.Postgres.URL, pass, int32(c.Postgres.MaxConns))
	if err != nil {
		return nil, nil, err
	}
	return []api.Option{api.WithResults(r)}, r, nil
}

// feedMetrics exports the results feed's size and the records its
// retention deleted before every sink had them.
func feedMetrics(st *store.Store, partitions int) []prometheus.Collector {
	sum := func(f func(store.FeedStats) float64) func() float64 {
		return func() float64 {
			var t float64
			for p := range partitions {
				t += f(st.FeedStats(p))
			}
			return t
		}
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gridedge_feed_bytes",
			Help: "Bytes of the results feed kept for sinks (bounded by feed_max_bytes)."},
			sum(func(s store.FeedStats) float64 { return float64(s.Bytes) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gridedge_feed_records",
			Help: "Records of the results feed kept for sinks."},
			sum(func(s store.FeedStats) float64 { return float64(s.Next - s.First) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gridedge_feed_trimmed_records_total",
			Help: "Results-feed records deleted by feed_max_bytes or feed_retention before every registered sink had them (those sinks resynchronise)."},
			sum(func(s store.FeedStats) float64 { return float64(s.Trimmed) })),
	}
}
