package e2e

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/dataset"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/edge/sim"
	"github.com/gridedge/gridedge/shared/mqtttest"
)

// TestSimulatorDatasets: gridedge-sim with appliance states (-states) into
// the collector binary with the shipped pipelines. The appliance_sessions
// dataset must be the sessions an uninterrupted pass over the truth file
// fires; exported as CSV and as Parquet it reads back to the API's rows;
// every device's rows are in event-time order (100 %); and the merged
// share of state readings, which the test reports, reaches the 85 % pass
// mark. The dataset metrics are on /metrics.
func TestSimulatorDatasets(t *testing.T) {
	broker := mqtttest.Start(t)
	c := startCollector(t, broker.URL(), t.TempDir(), "-zone-grace", "30s")
	var truth bytes.Buffer
	res, err := sim.Run(withTimeout(t, 4*time.Minute), sim.Config{
		MQTTURL:      broker.URL(),
		Site:         "datasets",
		Meters:       3,
		Profile:      sim.ProfileHousehold,
		States:       true,
		Duration:     time.Hour,
		Interval:     time.Second,
		Speed:        360,
		Seed:         12,
		DataDir:      t.TempDir(),
		Truth:        &truth,
		AckTimeout:   3 * time.Second,
		DrainTimeout: 3 * time.Minute,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatalf("simulator: %v (unacked %d)", err, res.Unacked)
	}
	readings := parseTruth(t, truth.Bytes())
	first, last := readings[0].time, readings[0].time
	devices := map[string]bool{}
	for _, r := range readings {
		devices[r.device] = true
		first, last = minTime(first, r.time), maxTime(last, r.time)
	}
	want := map[string]bool{}
	for k, r := range uninterruptedResults(t, readings) {
		if r.Pipeline == "appliance_sessions" {
			want[k] = true
		}
	}
	// Sessions in a device's first minute depend on whether its first
	// batch held states (arrivalDependent): compared only when both have them.
	skip := arrivalDependent(readings)
	skipped := map[string]bool{}
	if len(want) == 0 {
		t.Fatal("the uninterrupted pass fired no appliance session: nothing to check")
	}

	// Wait for the collector's sessions to be those of the uninterrupted pass.
	var sessions []store.WindowResult
	deadline := time.Now().Add(90 * time.Second)
	for {
		sessions = sessions[:0]
		got := map[string]bool{}
		for dev := range devices {
			var out struct{ Results []store.WindowResult }
			c.getJSON("/api/v1/results", url.Values{"pipeline": {"appliance_sessions"}, "device": {dev}, "limit": {"100000"}}, &out)
			for _, r := range out.Results {
				if !r.Provisional && !r.Retracted {
					sessions = append(sessions, r)
					k := resultKey(r.Pipeline, r.Device, r.Channel, r.Quantity, r.Start)
					got[k] = true
					skipped[k] = skip(r.Pipeline, r.Device, r.Start)
				}
			}
		}
		missing, extra := 0, 0
		for k := range want {
			if !got[k] {
				missing++
			}
		}
		for k := range got {
			if !want[k] && !skipped[k] {
				extra++
			}
		}
		if missing == 0 && extra == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector has %d final sessions, %d of the uninterrupted pass's %d missing", len(got), missing, len(want))
		}
		time.Sleep(500 * time.Millisecond)
	}

	var apiRows []dataset.Row
	var stateN, mergedN float64
	for i := range sessions {
		dataset.EachRow(&sessions[i], func(r *dataset.Row) error {
			apiRows = append(apiRows, copyRow(r))
			return nil
		})
		stateN += sessions[i].Values["state_readings"]
		mergedN += sessions[i].Values["state_merged"]
	}
	q := url.Values{"pipeline": {"appliance_sessions"},
		"from": {first.Add(-time.Hour).Format(time.RFC3339)}, "to": {last.Add(time.Hour).Format(time.RFC3339)}}
	csvBytes := c.getRaw("/api/v1/datasets", q)
	q.Set("format", "parquet")
	pqBytes := c.getRaw("/api/v1/datasets", q)

	var csvRows, pqRows []dataset.Row
	if _, err := dataset.ReadCSV(bytes.NewReader(csvBytes), func(r *dataset.Row) error { csvRows = append(csvRows, copyRow(r)); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := dataset.ReadParquet(bytes.NewReader(pqBytes), int64(len(pqBytes)), func(r *dataset.Row) error { pqRows = append(pqRows, copyRow(r)); return nil }); err != nil {
		t.Fatal(err)
	}
	// The API lists per device, the export over all devices: both by
	// device then window start.
	sortRows(apiRows)
	for name, rows := range map[string][]dataset.Row{"csv": csvRows, "parquet": pqRows} {
		if d := diffRows(rows, apiRows); d != "" {
			t.Fatalf("%s export differs from the API's rows: %s", name, d)
		}
	}

	// Time order: each device's rows, in export order, strictly after the
	// previous one.
	inOrder, total := 0, 0
	prev := map[string]time.Time{}
	for _, r := range csvRows {
		if p, ok := prev[r.Device]; !ok || r.Time.After(p) {
			inOrder++
		}
		prev[r.Device] = r.Time
		total++
	}
	order := float64(inOrder) / float64(total)
	merged := mergedN / stateN
	t.Logf("datasets: %d devices, %d sessions, %d rows; time order %.2f %% (%d/%d); merged share %.2f %% (%.0f/%.0f state readings); CSV %d B, Parquet %d B",
		len(devices), len(sessions), total, 100*order, inOrder, total, 100*merged, mergedN, stateN, len(csvBytes), len(pqBytes))
	if order != 1 {
		t.Errorf("time order %.4f, want 1", order)
	}
	if merged < 0.85 {
		t.Errorf("merged share %.4f below the 0.85 pass mark", merged)
	}
	metrics := string(c.getRaw("/metrics", nil))
	for dev := range devices {
		for _, m := range []string{"gridedge_dataset_device_time_order_ratio", "gridedge_dataset_device_merged_ratio"} {
			if !strings.Contains(metrics, fmt.Sprintf(`%s{device=%q,pipeline="appliance_sessions"}`, m, dev)) {
				t.Errorf("/metrics has no %s for %s", m, dev)
			}
		}
	}
}

func copyRow(r *dataset.Row) dataset.Row {
	c := *r
	c.Values = append([]float64(nil), r.Values...)
	return c
}

func sortRows(rows []dataset.Row) {
	slices.SortStableFunc(rows, func(a, b dataset.Row) int {
		if a.Device != b.Device {
			return strings.Compare(a.Device, b.Device)
		}
		return a.WindowStart.Compare(b.WindowStart)
	})
}

func diffRows(got, want []dataset.Row) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		same := g.Device == w.Device && g.Channel == w.Channel && g.WindowStart.Equal(w.WindowStart) && g.WindowEnd.Equal(w.WindowEnd) &&
			g.Revision == w.Revision && g.Time.Equal(w.Time) && len(g.Values) == len(w.Values)
		for j := 0; same && j < len(w.Values); j++ {
			same = g.Values[j] == w.Values[j]
		}
		if !same {
			return fmt.Sprintf("row %d: %+v, want %+v", i, g, w)
		}
	}
	return ""
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// getRaw returns the body of a GET that must answer 200.
func (p *collectorProc) getRaw(path string, q url.Values) []byte {
	p.t.Helper()
	u := "http://" + p.httpAddr + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		p.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		p.t.Fatalf("GET %s: %s %v %.300s", u, resp.Status, err, body)
	}
	if e := resp.Trailer.Get("Gridedge-Error"); e != "" {
		p.t.Fatalf("GET %s: %s", u, e)
	}
	return body
}
