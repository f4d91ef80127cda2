package collector

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/gridedge/gridedge/cloud/analytics"
	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
)

// AnalyticsConfig is the `analytics:` section: anomaly bands and
// forecasts derived from a pipeline's results (docs/analytics.md).
type AnalyticsConfig struct {
	// Enabled runs them (default true) when the source pipeline is one of
	// the configured pipelines. Without it the default source (energy_15m)
	// turns them off, logged at start; another source is an error.
	Enabled          bool `yaml:"enabled"`
	analytics.Config `yaml:",inline"`
}

// DefaultAnalyticsConfig models energy_15m every 10 minutes.
func DefaultAnalyticsConfig() AnalyticsConfig {
	return AnalyticsConfig{Enabled: true, Config: analytics.DefaultConfig()}
}

// WithAnalyticsOptions passes options to the analytics runner (tests drive
// its schedule and clock with them).
func WithAnalyticsOptions(opts ...analytics.Option) Option {
	return func(c *Collector) { c.analyticsOpts = append(c.analyticsOpts, opts...) }
}

// validate checks the section against the configured pipelines.
func (a AnalyticsConfig) validate(pipes []window.Pipeline, siteTZ string) error {
	if !a.Enabled {
		return nil
	}
	cfg := a.resolved(siteTZ)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("analytics: %w", err)
	}
	names := pipelineNames(pipes)
	if !slices.Contains(names, cfg.Source) && cfg.Source != analytics.DefaultConfig().Source {
		return fmt.Errorf("analytics: source %q is not a configured pipeline (%v); set analytics.source or analytics.enabled: false", cfg.Source, names)
	}
	for _, n := range cfg.Pipelines() {
		if slices.Contains(names, n) {
			return fmt.Errorf("analytics: pipeline %q is also a configured window pipeline", n)
		}
	}
	return nil
}

// resolved places devices without a zone in the site's zone unless the
// section names one.
func (a AnalyticsConfig) resolved(siteTZ string) analytics.Config {
	cfg := a.Config
	if cfg.TimeZone == "" {
		cfg.TimeZone = siteTZ
	}
	return cfg
}

// active reports whether the analytics run: enabled, and their source
// pipeline configured.
func (a AnalyticsConfig) active(pipes []window.Pipeline) bool {
	return a.Enabled && slices.Contains(pipelineNames(pipes), a.Source)
}

// newAnalytics returns the runner of cfg over st (nil when not active);
// partitions is the readings log's, so a device's results are committed
// under its partition.
func newAnalytics(cfg Config, st *store.Store, partitions int, now func() time.Time, l *slog.Logger, opts []analytics.Option) (*analytics.Runner, error) {
	if !cfg.Analytics.active(collectorPipelines(cfg)) {
		if cfg.Analytics.Enabled {
			l.Info("analytics off: their source pipeline is not configured", "source", cfg.Analytics.Source)
		}
		return nil, nil
	}
	base := []analytics.Option{analytics.WithClock(now), analytics.WithLogger(l),
		analytics.WithPartitioner(func(device string) int { return readlog.PartitionFor([]byte(device), partitions) })}
	r, err := analytics.New(cfg.Analytics.resolved(cfg.SiteTZ), st, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	return r, nil
}

// servedPipelines are the pipelines /api/v1/results serves: the window
// pipelines and, when active, the analytics'.
func servedPipelines(cfg Config, pipes []window.Pipeline) []string {
	names := pipelineNames(pipes)
	if cfg.Analytics.active(pipes) {
		names = append(names, cfg.Analytics.Pipelines()...)
	}
	return names
}
