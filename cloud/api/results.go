package api

import "github.com/gridedge/gridedge/cloud/store"

// Results is what /api/v1/results, /api/v1/late and /api/v1/devices read:
// the embedded store by default; in the cluster wiring it can be the
// PostgreSQL sink's database (cloud/sink/postgres.Reader), which holds
// every partition's results while each worker node's store holds only its
// own. Implementations call fn in the store's order and stop at fn's first
// error, returning it.
type Results interface {
	Results(q store.ResultQuery, fn func(*store.WindowResult) error) error
	LateReadings(q store.LateQuery, fn func(*store.LateReading) error) error
	Devices(after string, fn func(id string, info *store.DeviceInfo, st *store.Status) error) error
}

// WithResults serves results, late readings and devices from r instead of
// the store (raw readings, windows, dead letters and conflicts stay on the
// store).
func WithResults(r Results) Option { return func(s *server) { s.res = r } }
