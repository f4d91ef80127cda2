package window_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

var benchBase = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).UnixNano()

func statsPipeline() window.Pipeline {
	return window.Pipeline{
		Name: "power_1m", Inputs: []window.Selector{{Quantity: "active_power"}},
		Window: window.WindowSpec{Kind: window.Tumbling, Size: time.Minute},
		Aggregations: []window.Aggregation{
			{Name: "count", Func: window.Count}, {Name: "mean", Func: window.Mean}, {Name: "min", Func: window.Min},
			{Name: "max", Func: window.Max}, {Name: "stddev", Func: window.Stddev},
		},
		OutOfOrderness: 5 * time.Second, AllowedLateness: time.Minute, IdleTimeout: 2 * time.Minute, MaxGap: time.Second,
	}
}

// benchKeys returns one template reading per key: devices × channels.
func benchKeys(devices, channels int) []window.Reading {
	keys := make([]window.Reading, 0, devices*channels)
	for d := range devices {
		dev := fmt.Sprintf("meter-%06d", d)
		for c := range channels {
			keys = append(keys, window.Reading{Device: dev, Channel: fmt.Sprintf("ch%d", c), Quantity: power, Quality: synced, SeqEpoch: uint64(d)})
		}
	}
	return keys
}

// reportRate reports readings per wall second and per CPU second of the
// whole process (GC included): on a loaded machine the second is the
// per-core figure.
func reportRate(b *testing.B, readings int, cpuStart time.Duration) {
	b.ReportMetric(float64(readings)/b.Elapsed().Seconds(), "readings/s")
	if cpu := processCPU() - cpuStart; cpu > 0 {
		b.ReportMetric(float64(readings)/cpu.Seconds(), "readings/cpu-s")
	}
}

// Every key reports once a second; keys interleave as readings from many
// devices do at a collector. Output is taken every 100,000 readings.
func runStream(b *testing.B, eng *window.Engine, keys []window.Reading, apply func(i int, r *window.Reading)) {
	// One round creates every series: the timed loop measures steady state.
	for k := range keys {
		r := &keys[k]
		r.TimeNs = benchBase - int64(time.Hour) + int64(k)
		apply(k, r)
	}
	eng.Recycle(eng.TakeOutput())
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for i := 0; i < b.N; i++ {
		k := i % len(keys)
		r := &keys[k]
		r.TimeNs = benchBase + int64(i/len(keys))*int64(time.Second) + int64(k)
		r.Value = float64(i & 1023)
		r.Seq++
		apply(i, r)
		if i%100_000 == 99_999 {
			eng.Recycle(eng.TakeOutput())
		}
	}
	reportRate(b, b.N, cpu)
}

func BenchmarkTumblingStats(b *testing.B) {
	keys := benchKeys(25_000, 4)
	eng, err := window.New([]window.Pipeline{statsPipeline()})
	if err != nil {
		b.Fatal(err)
	}
	runStream(b, eng, keys, func(_ int, r *window.Reading) { eng.Apply(r) })
}

func BenchmarkTumblingStatsResolved(b *testing.B) {
	keys := benchKeys(25_000, 4)
	eng, err := window.New([]window.Pipeline{statsPipeline()})
	if err != nil {
		b.Fatal(err)
	}
	routes := make([]window.Route, len(keys))
	for i, k := range keys {
		routes[i] = eng.Resolve(k.Device, k.Channel, k.Quantity)
	}
	runStream(b, eng, keys, func(i int, r *window.Reading) { eng.ApplyRoute(routes[i%len(keys)], r) })
}

func BenchmarkSlidingSnapshot(b *testing.B) {
	keys := benchKeys(250, 4)
	eng, err := window.New([]window.Pipeline{{
		Name: "snapshot", Inputs: []window.Selector{{}},
		Window:         window.WindowSpec{Kind: window.Sliding, Size: 15 * time.Second, Slide: time.Second},
		Aggregations:   []window.Aggregation{{Name: "mean", Func: window.Mean}, {Name: "rows", Func: window.Readings}},
		OutOfOrderness: time.Second, AllowedLateness: 5 * time.Second,
	}})
	if err != nil {
		b.Fatal(err)
	}
	runStream(b, eng, keys, func(_ int, r *window.Reading) { eng.Apply(r) })
}

func BenchmarkSessionJoin(b *testing.B) {
	keys := benchKeys(500, 2)
	eng, err := window.New([]window.Pipeline{{
		Name: "appliance", Inputs: []window.Selector{{}}, Join: []string{"ch0", "ch1"},
		Window:         window.WindowSpec{Kind: window.Session, Gap: 5 * time.Second, MinDuration: 30 * time.Second},
		Aggregations:   []window.Aggregation{{Name: "count", Func: window.Count}, {Name: "rows", Func: window.Readings}},
		OutOfOrderness: time.Second, AllowedLateness: 10 * time.Second,
	}})
	if err != nil {
		b.Fatal(err)
	}
	// A device is silent 10 s every 50 s, which closes its session.
	runStream(b, eng, keys, func(i int, r *window.Reading) {
		if (r.TimeNs-benchBase)/int64(time.Second)%50 < 40 {
			eng.Apply(r)
		}
	})
}

// From wire bytes: each device's minute of readings arrives as one
// protobuf batch, decoded and validated, then applied.
func BenchmarkTumblingStatsFromWire(b *testing.B) {
	const devices, perBatch = 2_000, 60
	eng, err := window.New([]window.Pipeline{statsPipeline()})
	if err != nil {
		b.Fatal(err)
	}
	payloads := make([][]byte, devices)
	for d := range payloads {
		batch := &wire.Batch{DeviceId: fmt.Sprintf("meter-%06d", d), SeqEpoch: uint64(d), BootId: "boot"}
		for s := range perBatch {
			batch.Readings = append(batch.Readings, &wire.Reading{
				Seq: uint64(s + 1), Channel: "mains", Quantity: power, Value: float64(s),
				WallNs: benchBase + int64(s)*int64(time.Second), TimeQuality: synced,
			})
		}
		if payloads[d], err = wire.EncodeBatch(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	n := 0
	var rs []window.Reading
	for i := 0; n < b.N; i++ {
		batch, err := wire.DecodeBatch(payloads[i%devices])
		if err != nil {
			b.Fatal(err)
		}
		// Replays shift by a minute per round so windows keep closing.
		shift := int64(i/devices) * int64(time.Minute)
		rs = window.AppendBatch(rs[:0], batch)
		for j := range rs {
			rs[j].TimeNs += shift
		}
		eng.ApplyBatch(rs)
		n += len(batch.Readings)
		if i%1000 == 999 {
			eng.Recycle(eng.TakeOutput())
		}
	}
	reportRate(b, n, cpu)
}

// BenchmarkOpenWindowMemory reports the heap held per open window of the
// stats pipeline (state only, no output pending), measured once with
// runtime.MemStats; b.N only repeats the cheap part.
func BenchmarkOpenWindowMemory(b *testing.B) {
	keys := benchKeys(25_000, 4)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	eng, err := window.New([]window.Pipeline{statsPipeline()})
	if err != nil {
		b.Fatal(err)
	}
	for i := range keys {
		keys[i].TimeNs = benchBase
		eng.Apply(&keys[i])
	}
	eng.TakeOutput()
	runtime.GC()
	runtime.ReadMemStats(&after)
	open := eng.Stats().OpenWindows
	perWindow := float64(after.HeapAlloc-before.HeapAlloc) / float64(open)
	for i := 0; i < b.N; i++ {
		eng.Stats()
	}
	b.ReportMetric(perWindow, "B/window")
	b.ReportMetric(float64(open), "windows")
	runtime.KeepAlive(eng)
}

// BenchmarkResolve isolates Apply's key resolution: 100,000 keys of 25,000
// devices, interleaved as in TumblingStats, every series already created.
func BenchmarkResolve(b *testing.B) {
	keys := benchKeys(25_000, 4)
	eng, err := window.New([]window.Pipeline{statsPipeline()})
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range keys {
		eng.Resolve(k.Device, k.Channel, k.Quantity)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var sum window.Route
	for i := 0; i < b.N; i++ {
		k := &keys[i%len(keys)]
		sum += eng.Resolve(k.Device, k.Channel, k.Quantity)
	}
	if sum < 0 {
		b.Fatal("negative route")
	}
}
