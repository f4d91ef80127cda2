package collector

import (
	"log/slog"
	"time"

	"github.com/gridedge/gridedge/cloud/fleet"
	"github.com/gridedge/gridedge/cloud/store"
)

// MaxMetricsDeviceLimit is the highest metrics_device_limit accepted: the
// per-device series stay a small part of a scrape.
const MaxMetricsDeviceLimit = 10_000

// fleetRefresh is how long a fleet summary is reused: one scan reads every
// device's record and status (about 0.3 s of CPU and 50 MB of short-lived
// allocations for 50,000 devices, BenchmarkFleetScan50k), so scrapes
// share it.
const fleetRefresh = 30 * time.Second

// fleetMetrics summarises the devices in st for /metrics.
func fleetMetrics(cfg Config, st *store.Store, now func() time.Time, log *slog.Logger) *fleet.Collector {
	return fleet.New(fleetSource(st), fleet.WithOfflineAfter(cfg.DeviceOfflineAfter),
		fleet.WithDeviceLimit(cfg.MetricsDeviceLimit), fleet.WithMinInterval(fleetRefresh),
		fleet.WithClock(now), fleet.WithLogger(log))
}

// fleetSource reads each device's counters and latest status from st
// (fleet.FromStore).
func fleetSource(st *store.Store) fleet.Source {
	return func(fn func(fleet.Device) error) error {
		return st.Devices("", func(id string, info *store.DeviceInfo, s *store.Status) error {
			return fn(fleet.FromStore(id, info, s))
		})
	}
}
