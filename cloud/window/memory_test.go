package window_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
)

// fleetPipelines are the collector's: the shipped pipelines and the
// one-minute windows of every series behind /api/v1/windows.
func fleetPipelines() []window.Pipeline {
	return append(window.DefaultPipelines(), window.Pipeline{
		Name: "windows_1m", Inputs: []window.Selector{{}},
		Window: window.WindowSpec{Kind: window.Tumbling, Size: time.Minute},
		Aggregations: []window.Aggregation{{Name: "count", Func: window.Count}, {Name: "sum", Func: window.Sum},
			{Name: "mean", Func: window.Mean}, {Name: "min", Func: window.Min}, {Name: "max", Func: window.Max}},
		OutOfOrderness: 10 * time.Second, AllowedLateness: time.Hour, IdleTimeout: 5 * time.Second,
	})
}

func heapAlloc() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// The engine's memory per device, measured on the heap after a GC, stays
// within its documented bounds (docs/windowing.md, Memory): with the
// collector's pipelines, a device of four power channels that sent 100 s
// of 1 Hz readings holds under 20 KiB with its windows in memory (it held
// 84 KiB when every day window kept a bin for each of its 288
// slots), and under 6 KiB once unloaded. The bounds are about twice what
// is measured, so the test cannot flake; a regression to per-slot bins
// fails it by far.
func TestMemoryPerDevice(t *testing.T) {
	const devices = 2000
	st := &storedStates{states: map[string][]byte{}}
	base := heapAlloc()
	eng, err := window.New(fleetPipelines(), window.WithStateLoader(st.load))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC).UnixNano()
	names := make([]string, devices)
	for d := range devices {
		names[d] = fmt.Sprintf("fleet-%05d", d)
	}
	for s := range 100 {
		at := start + int64(s)*int64(time.Second)
		eng.Advance(at)
		for d, dev := range names {
			for c, ch := range []string{"mains", "sub1", "sub2", "sub3"} {
				eng.Apply(&window.Reading{Device: dev, Channel: ch, Quantity: power, TimeNs: at, Value: float64((d + s + c) % 2500),
					Quality: synced, SeqEpoch: 1, Seq: uint64(4*s + c + 1)})
			}
		}
		eng.TakeOutput()
	}
	loaded := (heapAlloc() - base) / devices
	st.take(t, eng)
	if n := eng.Unload(start + int64(time.Hour)); n != devices {
		t.Fatalf("unloaded %d devices, want %d", n, devices)
	}
	withStates := heapAlloc()
	runtime.KeepAlive(eng)
	eng = nil
	statesOnly := heapAlloc()
	unloaded := (withStates - statesOnly) / devices
	var stateBytes int
	for _, s := range st.states {
		stateBytes += len(s)
	}
	t.Logf("per device: %d B in memory, %d B unloaded, %d B of stored state", loaded, unloaded, stateBytes/devices)
	if loaded > 20<<10 {
		t.Errorf("%d B per device with its windows in memory, want under 20 KiB", loaded)
	}
	if unloaded > 6<<10 {
		t.Errorf("%d B per unloaded device, want under 6 KiB", unloaded)
	}
}
