package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/gridedge/gridedge/edge/config"
	"github.com/gridedge/gridedge/shared/mqtttest"
)

// BenchmarkAgent8Channels1Hz runs a real agent (8 channels sampled at 1 Hz
// on the wall clock, Badger buffer, MQTT to a real Mosquitto, acks from an
// in-process collector) for 20 s and reports CPU time per reading and the
// process's peak RSS. Run it alone: go test -run XXX -bench Agent8 -benchtime 1x ./edge/agent
// (The collector's MQTT client is in the same process, so the CPU figure
// is an upper bound for the agent.)
func BenchmarkAgent8Channels1Hz(b *testing.B) {
	const runFor = 20 * time.Second
	broker := mqtttest.Start(b)
	ackAll(b, broker.URL())
	dir := b.TempDir()
	yaml := fmt.Sprintf(`
device_id: bench-1
site: lab
state_dir: %s
mqtt: {url: %q, ack_timeout: 10s}
buffer: {dir: %s}
sample_interval: 1s
status_interval: 5s
channels:
`, filepath.Join(dir, "state"), broker.URL(), filepath.Join(dir, "buf"))
	for i := 0; i < 8; i++ {
		yaml += fmt.Sprintf("  - {name: ch%d, driver: fake, quantities: [active_power]}\n", i)
	}
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		a, err := New(cfg, WithRegistry(registry()), WithClock(fixedClock{}))
		if err != nil {
			b.Fatal(err)
		}
		var before syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		ctx, cancel := context.WithTimeout(context.Background(), runFor)
		if err := a.Run(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
		var after syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		st := a.Stats()
		cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(st.Generated), "readings")
		b.ReportMetric(float64(cpu.Microseconds())/float64(max(st.Generated, 1)), "cpu-µs/reading")
		b.ReportMetric(100*cpu.Seconds()/runFor.Seconds(), "cpu-%")
		b.ReportMetric(float64(after.Maxrss)/1024, "maxrss-MB")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	}
}
