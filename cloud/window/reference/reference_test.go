package reference_test

import (
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/cloud/window/reference"
	"github.com/gridedge/gridedge/shared/wire"
)

// A hand-computed example pins the reference itself: 10 s windows,
// out-of-orderness 1 s, lateness 5 s.
func TestHandExample(t *testing.T) {
	p := window.Pipeline{
		Name: "p", Inputs: []window.Selector{{}},
		Window: window.WindowSpec{Kind: window.Tumbling, Size: 10 * time.Second},
		Aggregations: []window.Aggregation{
			{Name: "sum", Func: window.Sum}, {Name: "first", Func: window.First}, {Name: "ec", Func: window.EnergyCounter},
			{Name: "ei", Func: window.EnergyIntegral},
		},
		OutOfOrderness: time.Second, AllowedLateness: 5 * time.Second, MaxGap: 2 * time.Second,
	}
	s := int64(time.Second)
	r := func(t int64, v float64, seq uint64) window.Reading {
		return window.Reading{Device: "d", Channel: "c", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, TimeNs: t * s, Value: v,
			Quality: wire.TimeQuality_TIME_QUALITY_SYNCED, Seq: seq}
	}
	arrivals := []window.Reading{
		r(2, 100, 1), r(8, 50, 2), r(5, 10, 3), // [0,10): 2→100, 5→10, 8→50
		r(12, 1, 4), // watermark 11: [0,10) final
		r(20, 1, 5), // watermark 19
		r(3, 7, 6),  // 10 + 5 <= 19: late
		r(14, 2, 7), // [10,20) accepted (20 + 5 > 19)
	}
	out, err := reference.Compute([]window.Pipeline{p}, nil, arrivals)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Late) != 1 || out.Late[0].Reading.Seq != 6 {
		t.Fatalf("late %+v", out.Late)
	}
	if len(out.Final) != 1 { // [10,20) ends after the watermark (19 s)
		t.Fatalf("finals %+v", out.Final)
	}
	w := out.Final[0]
	// Counter 100 → 10 (reset: +10) → 50 (+40). Step integral, 2 s cap:
	// 100 W·2 s + 10 W·2 s + 50 W·2 s (to the window end) = 320 W·s.
	want := []float64{160, 100, 50, 320.0 / 3600}
	for i, v := range want {
		if w.Values[i] != v {
			t.Errorf("%s = %v, want %v", w.Names[i], w.Values[i], v)
		}
	}
	if w.CounterResets != 1 || w.Count != 3 || w.Coverage != 3.0/5 {
		t.Errorf("resets %d count %d coverage %v", w.CounterResets, w.Count, w.Coverage)
	}
}
