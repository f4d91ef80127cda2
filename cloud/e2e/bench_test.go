package e2e

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/gridedge/gridedge/edge/sim"
	"github.com/gridedge/gridedge/shared/mqtttest"
)

// BenchmarkEndToEnd measures readings per second from generation to the
// collector's end-to-end ack: the simulator's meters (real agent pipeline,
// Badger buffers) publish as fast as they can through Mosquitto to the
// gridedge-collector binary, and the clock stops when the last reading is
// acknowledged (stored durably). Run with
//
//	go test -run '^$' -bench EndToEnd -benchtime 1x ./cloud/e2e/
func BenchmarkEndToEnd(b *testing.B) {
	for _, meters := range []int{20, 200} {
		b.Run(fmt.Sprintf("meters=%d", meters), func(b *testing.B) {
			var total uint64
			var elapsed time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				broker := mqtttest.Start(b)
				c := startCollector(b, broker.URL(), b.TempDir())
				var truth bytes.Buffer
				cfg := simConfig(broker.URL(), b.TempDir(), &truth)
				cfg.Meters = meters
				// About 200,000 readings whatever the meter count (5 quantities per 10 s sample).
				cfg.Duration = time.Duration(200_000/(meters*5)) * cfg.Interval
				cfg.Speed = 1e6 // sampling is never the bottleneck
				cfg.DrainTimeout = 8 * time.Minute
				b.StartTimer()
				start := time.Now()
				res, err := sim.Run(withTimeout(b, 10*time.Minute), cfg)
				elapsed += time.Since(start)
				b.StopTimer()
				if err != nil {
					b.Fatalf("simulator: %v", err)
				}
				total += res.Generated
				c.kill()
			}
			b.ReportMetric(float64(total)/elapsed.Seconds(), "readings/s")
			b.ReportMetric(float64(total)/float64(b.N), "readings/op")
		})
	}
}
