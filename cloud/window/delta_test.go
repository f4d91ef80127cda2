package window_test

import (
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

// An engine writes only the devices that changed, and nothing at all while
// no reading arrives and no window fires.
func TestDeltaHoldsOnlyChangedDevicesAndNothingWhenIdle(t *testing.T) {
	p := window.Pipeline{
		Name:         "p1m",
		Inputs:       []window.Selector{{Quantity: "active_power"}},
		Window:       window.WindowSpec{Kind: window.Tumbling, Size: time.Minute},
		Aggregations: []window.Aggregation{{Name: "mean", Func: window.Mean}},
		IdleTimeout:  time.Minute,
	}
	eng, err := window.New([]window.Pipeline{p})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	apply := func(dev string, at int64) {
		eng.Advance(at)
		eng.Apply(&window.Reading{Device: dev, Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, TimeNs: at, Value: 1, Seq: uint64(at)})
	}
	devices := func() map[string]bool {
		eng.TakeOutput()
		d, err := eng.TakeDelta()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, ds := range d.Devices {
			m[ds.Device] = true
		}
		if (d.Header == nil) != (len(m) == 0) {
			t.Fatalf("header %v with %d devices", d.Header != nil, len(m))
		}
		return m
	}
	for i := range 100 {
		apply("dev"+string(rune('a'+i%26))+string(rune('a'+i/26)), t0)
	}
	if got := devices(); len(got) != 100 {
		t.Fatalf("first delta: %d devices, want 100", len(got))
	}
	apply("devaa", t0+int64(time.Second))
	if got := devices(); len(got) != 1 || !got["devaa"] {
		t.Fatalf("after one device's reading: %v, want only devaa", got)
	}
	// Processing time moves, nothing is idle long enough: nothing changed.
	eng.Advance(t0 + int64(2*time.Second))
	if got := devices(); len(got) != 0 {
		t.Fatalf("idle tick: %v, want nothing", got)
	}
	// Past the idle timeout every device emits a provisional result once:
	// each changes once, then nothing again.
	eng.Advance(t0 + int64(5*time.Minute))
	if got := devices(); len(got) != 100 {
		t.Fatalf("idle timeout: %d devices changed, want 100", len(got))
	}
	eng.Advance(t0 + int64(10*time.Minute))
	if got := devices(); len(got) != 0 {
		t.Fatalf("after provisional results: %v changed, want nothing", got)
	}
}
