package collector

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/wire"
)

const zonePipelines = `
pipelines:
  - name: daily
    inputs: [{quantity: active_power}]
    window: {kind: day}
    aggregations: [count, max]
    out_of_orderness: 1m
    allowed_lateness: 1h
`

// dayBatch is one reading an hour for 30 hours from start.
func dayBatch(device string, start time.Time) *wire.Batch {
	b := &wire.Batch{SchemaVersion: wire.SchemaVersion, DeviceId: device, SeqEpoch: 1, BootId: "boot"}
	for h := range 30 {
		b.Readings = append(b.Readings, &wire.Reading{Seq: uint64(h + 1), Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER,
			Value: float64(h), WallNs: start.Add(time.Duration(h) * time.Hour).UnixNano(), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED})
	}
	return b
}

// A device's calendar windows follow the zone its status announces; a
// device without one gets the configured site zone. A reading past the
// allowed lateness lands in the late stream with its window. The engine's
// counters are exported.
func TestEngineZonesLateStreamAndMetrics(t *testing.T) {
	b := mqtttest.Start(t)
	cfg := testConfig(t, b.URL(), t.TempDir())
	pipes, err := window.ParseConfig([]byte(zonePipelines))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Pipelines, cfg.SiteTZ = pipes, "America/New_York"
	ag := newAgent(t, b.URL(), "agent-zones", nil)
	st, _ := wire.EncodeStatus(&wire.Status{DeviceId: "paris", Online: true, TimeZone: "Europe/Paris"})
	if tok := ag.client.Publish("gridedge/v1/s/paris/status", 1, true, st); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	c, _ := start(t, cfg)
	base := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	waitFor(t, "paris status", func() bool {
		s, err := c.Store().Statuses()
		return err == nil && s["paris"].TimeZone == "Europe/Paris"
	})
	ag.publish("s", "paris", encode(t, dayBatch("paris", base)))
	ag.publish("s", "nyc", encode(t, dayBatch("nyc", base)))

	firstDay := func(device string) store.WindowResult {
		var out struct{ Results []store.WindowResult }
		waitFor(t, device+" daily result", func() bool {
			getJSON(t, "http://"+c.HTTPAddr()+"/api/v1/results?pipeline=daily&device="+device, &out)
			return len(out.Results) > 0
		})
		return out.Results[0]
	}
	if r := firstDay("paris"); !r.Start.Equal(time.Date(2026, 11, 19, 23, 0, 0, 0, time.UTC)) || r.Count != 11 {
		t.Errorf("paris first day %v..%v count %d, want the Europe/Paris day from 2026-11-19T23:00Z with 11 readings", r.Start, r.End, r.Count)
	}
	if r := firstDay("nyc"); !r.Start.Equal(time.Date(2026, 11, 20, 5, 0, 0, 0, time.UTC)) || r.Count != 17 {
		t.Errorf("nyc first day %v..%v count %d, want the America/New_York day from 2026-11-20T05:00Z with 17 readings", r.Start, r.End, r.Count)
	}

	// Two days after the first window closed: past its lateness.
	late := &wire.Batch{SchemaVersion: wire.SchemaVersion, DeviceId: "paris", SeqEpoch: 1, BootId: "boot", Readings: []*wire.Reading{
		{Seq: 100, Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: 5, WallNs: base.Add(time.Hour).UnixNano(), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED},
	}}
	ag.publish("s", "paris", encode(t, late))
	var lo struct{ Late []store.LateReading }
	waitFor(t, "late reading", func() bool {
		getJSON(t, "http://"+c.HTTPAddr()+"/api/v1/late?device=paris", &lo)
		return len(lo.Late) > 0
	})
	if l := lo.Late[0]; l.Seq != 100 || l.Pipeline != "daily" || len(l.Windows) != 1 || !l.Windows[0].Start.Equal(time.Date(2026, 11, 19, 23, 0, 0, 0, time.UTC)) {
		t.Errorf("late reading %+v", l)
	}

	// The exported counters are a snapshot taken after each commit: poll.
	want := []string{
		"gridedge_collector_window_readings_total 61\n",
		"gridedge_collector_window_late_readings_total ",
		"gridedge_collector_window_results_total ",
		"gridedge_collector_worker_commits_total ",
	}
	var metrics string
	deadline := time.Now().Add(waitLimit)
	for {
		metrics = scrape(t, c.HTTPAddr())
		missing := ""
		for _, w := range want {
			if !strings.Contains(metrics, w) {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %q", missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(metrics, "gridedge_collector_window_late_readings_total 0\n") {
		t.Error("the late reading is not counted")
	}
	if strings.Contains(metrics, "gridedge_collector_worker_commits_total 0\n") {
		t.Error("no worker commit counted")
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://%s/metrics", addr))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// An agent may send its first batch just before its status: the engine
// waits for a new device's status (up to the grace period) so its first
// day is in the announced zone, not the configured one.
func TestFirstBatchBeforeStatusStillGetsTheAnnouncedZone(t *testing.T) {
	b := mqtttest.Start(t)
	cfg := testConfig(t, b.URL(), t.TempDir())
	pipes, err := window.ParseConfig([]byte(zonePipelines))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Pipelines, cfg.SiteTZ, cfg.ZoneGrace = pipes, "UTC", time.Minute
	c, _ := start(t, cfg)
	ag := newAgent(t, b.URL(), "agent-early", nil)
	base := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	ag.publish("s", "early", encode(t, dayBatch("early", base)))
	// Acked (durable in the readings log), held by the worker for the status.
	waitFor(t, "batch acked", func() bool { return ag.ackCount() >= 1 })
	waitFor(t, "batch held", func() bool {
		return strings.Contains(scrape(t, c.HTTPAddr()), "gridedge_collector_worker_held_records 1\n")
	})
	st, _ := wire.EncodeStatus(&wire.Status{DeviceId: "early", Online: true, TimeZone: "Europe/Paris"})
	if tok := ag.client.Publish("gridedge/v1/s/early/status", 1, true, st); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	var out struct{ Results []store.WindowResult }
	waitFor(t, "daily result", func() bool {
		getJSON(t, "http://"+c.HTTPAddr()+"/api/v1/results?pipeline=daily&device=early", &out)
		return len(out.Results) > 0
	})
	if r := out.Results[0]; !r.Start.Equal(time.Date(2026, 11, 19, 23, 0, 0, 0, time.UTC)) || r.Count != 11 {
		t.Fatalf("first day %v..%v count %d, want the Europe/Paris day from 2026-11-19T23:00Z with 11 readings", r.Start, r.End, r.Count)
	}
}
