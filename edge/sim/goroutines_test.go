package sim

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/mqtttest"
)

// maxGoroutinesPerMeter is the bound on the goroutines a running,
// connected meter keeps (docs/simulator.md): the agent's Run, its sampling
// schedule, the publisher's send and connect loops and the MQTT session's
// reader.
const maxGoroutinesPerMeter = 5

// TestGoroutinesPerMeter counts the goroutines of a fleet while every
// meter is connected and sampling at 1 Hz, in the shared-memory buffer
// mode, and checks the per-meter bound.
func TestGoroutinesPerMeter(t *testing.T) {
	broker := mqtttest.Start(t)
	startCollector(t, broker.URL())
	const meters = 40
	// Everything the process runs besides the meters: the broker's and
	// the test collector's clients, the simulator's own few loops.
	base := runtime.NumGoroutine()
	const simOwn = 8 // Run, fault schedule, progress report, the shared store, runtime helpers
	// The timeout only bounds a fleet that never connects.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	counts := make(chan int, 1)
	samples, least := 0, 1<<30
	_, err := Run(ctx, Config{
		MQTTURL: broker.URL(), Site: "lab", Meters: meters, Speed: 1, Interval: time.Second, Duration: time.Hour,
		Buffer: BufferMemory, DataDir: t.TempDir(), ProgressInterval: 100 * time.Millisecond,
		Progress: func(p Progress) {
			if p.Connected < meters || p.Acked == 0 || samples >= 5 {
				return
			}
			// Goroutines that live only for a moment (a timer's run) are
			// not the meters' own: take the least of several counts.
			least = min(least, runtime.NumGoroutine())
			if samples++; samples == 5 {
				counts <- least
				cancel()
			}
		},
	})
	var n int
	select {
	case n = <-counts:
	default:
		t.Fatalf("the fleet was never counted with every meter connected and acked: %v", err)
	}
	perMeter := float64(n-base-simOwn) / meters
	t.Logf("%d goroutines with %d meters running (%d before): %.2f per meter", n, meters, base, perMeter)
	if n-base > maxGoroutinesPerMeter*meters+simOwn {
		t.Fatalf("%d goroutines for %d meters: %.2f per meter, bound %d", n-base, meters, perMeter, maxGoroutinesPerMeter)
	}
}
