package collector

import (
	"fmt"
	"math"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

// uninterrupted runs the collector's pipelines over readings in one pass,
// with nothing crashing, and returns the final (latest, not provisional)
// result of every fired window by pipeline, channel and start.
func uninterrupted(t testing.TB, cfg Config, device string, epoch uint64, readings []*wire.Reading) map[string]window.Result {
	t.Helper()
	pipes := cfg.Pipelines
	for i := range pipes {
		if pipes[i].TimeZone == "" {
			pipes[i].TimeZone = cfg.SiteTZ
		}
	}
	eng, err := window.New(pipes)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range readings {
		eng.Apply(&window.Reading{Device: device, Channel: r.Channel, Quantity: r.Quantity, TimeNs: r.WallNs,
			Value: r.Value, Quality: r.TimeQuality, SeqEpoch: epoch, Seq: r.Seq})
	}
	out := map[string]window.Result{}
	for _, r := range eng.TakeOutput().Results {
		out[resultID(r.Pipeline, r.Key.Channel, time.Unix(0, r.Start))] = r
	}
	return out
}

func resultID(pipeline, channel string, start time.Time) string {
	return pipeline + "|" + channel + "|" + start.UTC().Format(time.RFC3339)
}

// resultsDiffer compares the collector's latest results of every pipeline
// with want: the same windows, counts and aggregate values (stddev within
// 1e-9 relative: its sums run in another order). It returns "" when equal.
func resultsDiffer(t testing.TB, httpAddr, device string, pipes []window.Pipeline, want map[string]window.Result) string {
	t.Helper()
	got := map[string]store.WindowResult{}
	for _, p := range pipes {
		var out struct{ Results []store.WindowResult }
		getJSON(t, fmt.Sprintf("http://%s/api/v1/results?%s", httpAddr,
			url.Values{"pipeline": {p.Name}, "device": {device}, "limit": {"100000"}}.Encode()), &out)
		for _, r := range out.Results {
			got[resultID(r.Pipeline, r.Channel, r.Start)] = r
		}
	}
	var diffs []string
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			diffs = append(diffs, id+": missing")
			continue
		}
		if g.Count != w.Count || g.Provisional || !g.End.Equal(time.Unix(0, w.End)) {
			diffs = append(diffs, fmt.Sprintf("%s: count %d provisional %v end %v, want count %d end %v", id, g.Count, g.Provisional, g.End, w.Count, time.Unix(0, w.End).UTC()))
			continue
		}
		for i, name := range w.Names {
			v, ok := g.Values[name]
			tol := 0.0
			if name == "stddev" {
				tol = 1e-9 * math.Abs(w.Values[i])
			}
			if !ok || math.Abs(v-w.Values[i]) > tol {
				diffs = append(diffs, fmt.Sprintf("%s: %s = %v, want %v", id, name, v, w.Values[i]))
			}
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			diffs = append(diffs, id+": not in the uninterrupted computation")
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("and %d more", len(diffs)-5))
	}
	return strings.Join(diffs, "; ")
}

// waitForResults polls until the collector's results equal want (they are
// committed about once a second) and fails with the last difference.
func waitForResults(t testing.TB, httpAddr, device string, pipes []window.Pipeline, want map[string]window.Result) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("the uninterrupted computation fired no window: the test checks nothing")
	}
	deadline := time.Now().Add(waitLimit)
	for {
		diff := resultsDiffer(t, httpAddr, device, pipes, want)
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("results differ from an uninterrupted computation: %s", diff)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
