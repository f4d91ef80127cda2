package window_test

import (
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
)

// The shipped power_1m pipeline shows a meter sampling at the agent's
// default interval (10 s) as fully covered, and one missing reading as a
// gap: healthy data is never shown half missing.
func TestDefaultPowerCoverageAtTheAgentsInterval(t *testing.T) {
	var p1m window.Pipeline
	for _, p := range window.DefaultPipelines() {
		if p.Name == "power_1m" {
			p1m = p
		}
	}
	eng := mustEngine(t, p1m)
	seq := uint64(0)
	for s := 0; s < 5*60; s += 10 {
		if s == 140 { // minute 2 misses one reading
			continue
		}
		seq++
		eng.Advance(sec(float64(s)))
		eng.Apply(reading("d", "mains", sec(float64(s)), 100, seq))
	}
	coverage := map[int64]float64{}
	for _, r := range eng.TakeOutput().Results {
		coverage[(r.Start-t0)/int64(time.Minute)] = r.Coverage
	}
	if len(coverage) < 3 {
		t.Fatalf("%d minutes closed, want at least 3", len(coverage))
	}
	for m, c := range coverage {
		if want := 1.0; m != 2 && c != want {
			t.Fatalf("minute %d: coverage %v of a complete 10 s series, want %v", m, c, want)
		}
		if m == 2 && !(c < 1) {
			t.Fatalf("minute 2 misses a reading, coverage %v", c)
		}
	}
}
