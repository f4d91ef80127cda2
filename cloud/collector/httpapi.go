package collector

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridedge/gridedge/cloud/api"
	"github.com/gridedge/gridedge/cloud/dataset"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
)

// apiServer is the HTTP server of every role that serves the API (the
// one-process collector, worker and sink nodes): the same routes, options
// and limits, with extra options (tokens, a PostgreSQL results source)
// first.
func apiServer(cfg Config, st *store.Store, pipes []window.Pipeline, reg *prometheus.Registry,
	health func() error, log *slog.Logger, extra []api.Option) *http.Server {
	return &http.Server{
		Handler: api.New(st, append(extra,
			api.WithGatherer(reg),
			api.WithHealth(health),
			api.WithLogger(log),
			api.WithPipelines(servedPipelines(cfg, pipes)),
			api.WithAnalyticsPipelines(cfg.Analytics.Anomaly, cfg.Analytics.Forecast),
			api.WithDatasets(dataset.Specs(pipes)),
			api.WithWindowSizes(cfg.WindowSizes),
			api.WithDefaultTimeZone(cfg.SiteTZ),
			api.WithOfflineAfter(cfg.DeviceOfflineAfter))...),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}
