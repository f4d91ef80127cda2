package e2e

import (
	"fmt"
	"math"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	engine "github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

// engineResult is what /api/v1/results returns for one window.
type engineResult struct {
	Pipeline    string             `json:"pipeline"`
	Device      string             `json:"device"`
	Channel     string             `json:"channel"`
	Quantity    string             `json:"quantity"`
	Start       time.Time          `json:"start"`
	End         time.Time          `json:"end"`
	Revision    uint32             `json:"revision"`
	Provisional bool               `json:"provisional"`
	Values      map[string]float64 `json:"values"`
	Count       int64              `json:"count"`
}

func resultKey(pipeline, device, channel, quantity string, start time.Time) string {
	return strings.Join([]string{pipeline, device, channel, quantity, start.UTC().Format(time.RFC3339)}, "|")
}

// uninterruptedResults runs the shipped pipelines over the truth file in
// one pass, in time order per device (the zone the simulator announces for
// its meters), and returns every window that fires.
func uninterruptedResults(t testing.TB, truth []truthReading) map[string]engine.Result {
	t.Helper()
	eng, err := engine.New(engine.DefaultPipelines())
	if err != nil {
		t.Fatal(err)
	}
	sorted := append([]truthReading(nil), truth...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].time.Before(sorted[j].time) })
	// Every series exists from the device's first reading on, as in the
	// collector, whose engine resolves a batch's series before applying
	// it (a device's first batch holds its power and its states): the
	// pipelines that require a state series take the device from there.
	for _, r := range sorted {
		q, err := wire.ParseQuantity(r.quantity)
		if err != nil {
			t.Fatalf("truth quantity %q: %v", r.quantity, err)
		}
		eng.Resolve(r.device, r.channel, q)
	}
	for _, r := range sorted {
		q, err := wire.ParseQuantity(r.quantity)
		if err != nil {
			t.Fatalf("truth quantity %q: %v", r.quantity, err)
		}
		if err := eng.SetTimeZone(r.device, "Europe/Paris"); err != nil {
			t.Fatal(err)
		}
		eng.Apply(&engine.Reading{Device: r.device, Channel: r.channel, Quantity: q, TimeNs: r.time.UnixNano(),
			Value: r.value, Quality: wire.TimeQuality_TIME_QUALITY_SYNCED, SeqEpoch: r.epoch, Seq: r.seq})
	}
	skip := arrivalDependent(truth)
	out := map[string]engine.Result{}
	for _, r := range eng.TakeOutput().Results {
		q := ""
		if r.Key.Quantity != wire.Quantity_QUANTITY_UNSPECIFIED {
			q = r.Key.Quantity.Name()
		}
		if skip(r.Pipeline, r.Key.Device, time.Unix(0, r.Start)) {
			continue
		}
		out[resultKey(r.Pipeline, r.Key.Device, r.Key.Channel, q, time.Unix(0, r.Start))] = r
	}
	return out
}

// arrivalDependent reports the windows a comparison with an uninterrupted
// pass leaves out: those of pipelines that require a state series (the
// dataset pipelines) starting in a device's first minute. Such a pipeline
// takes a device's series from its first state reading in arrival order,
// and an agent's first batch may hold only its first power readings (the
// states follow in the next one), which the collector then leaves out and
// a pass in time order does not.
func arrivalDependent(truth []truthReading) func(pipeline, device string, start time.Time) bool {
	requires := map[string]bool{}
	for _, p := range engine.DefaultPipelines() {
		requires[p.Name] = len(p.Requires) > 0
	}
	first := map[string]time.Time{}
	for _, r := range truth {
		if f, ok := first[r.device]; !ok || r.time.Before(f) {
			first[r.device] = r.time
		}
	}
	return func(pipeline, device string, start time.Time) bool {
		return requires[pipeline] && start.Before(first[device].Add(time.Minute))
	}
}

// checkEngineResults polls until the collector's engine results equal an
// uninterrupted pass over the truth: every window that pass fires is there,
// final, with the same count and aggregates (sums within 1e-9 relative:
// they add in arrival order). Provisional results of windows that never
// fire (a device's newest window, once it has been idle) are allowed.
func checkEngineResults(t testing.TB, c *collectorProc, truth []truthReading) {
	t.Helper()
	want := uninterruptedResults(t, truth)
	if len(want) == 0 {
		t.Fatal("the uninterrupted pass fired no window: nothing to compare")
	}
	devices := map[string]bool{}
	for _, r := range truth {
		devices[r.device] = true
	}
	skip := arrivalDependent(truth)
	var diff string
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := map[string]engineResult{}
		for _, p := range engine.DefaultPipelines() {
			for dev := range devices {
				var resp struct {
					Results []engineResult `json:"results"`
				}
				c.getJSON("/api/v1/results", url.Values{"pipeline": {p.Name}, "device": {dev}, "limit": {"100000"}}, &resp)
				for _, r := range resp.Results {
					if !skip(r.Pipeline, r.Device, r.Start) {
						got[resultKey(r.Pipeline, r.Device, r.Channel, r.Quantity, r.Start)] = r
					}
				}
			}
		}
		diff = compareResults(want, got)
		if diff == "" {
			t.Logf("engine: %d fired windows equal an uninterrupted pass", len(want))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("engine results differ from an uninterrupted pass over the truth (%d windows): %s", len(want), diff)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func compareResults(want map[string]engine.Result, got map[string]engineResult) string {
	var diffs []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			diffs = append(diffs, k+": missing")
			continue
		case g.Provisional || g.Count != w.Count || !g.End.Equal(time.Unix(0, w.End)):
			diffs = append(diffs, fmt.Sprintf("%s: count %d provisional %v end %v, want count %d", k, g.Count, g.Provisional, g.End, w.Count))
			continue
		}
		for i, name := range w.Names {
			v, ok := g.Values[name]
			if !ok || !nearlyEqual(v, w.Values[i]) && math.Abs(v-w.Values[i]) > 1e-9 {
				diffs = append(diffs, fmt.Sprintf("%s: %s %v, want %v", k, name, v, w.Values[i]))
			}
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok && !g.Provisional {
			diffs = append(diffs, k+": final result of a window the uninterrupted pass does not fire")
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("and %d more", len(diffs)-5))
	}
	return strings.Join(diffs, "; ")
}
