package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridedge/gridedge/cloud/intake"
	"github.com/gridedge/gridedge/cloud/readlog/local"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/cloud/worker"
	"github.com/gridedge/gridedge/shared/wire"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func windowsPipeline(size time.Duration) window.Pipeline {
	return window.Pipeline{Name: store.WindowPipeline(size), Inputs: []window.Selector{{}},
		Window: window.WindowSpec{Kind: window.Tumbling, Size: size}, TimeZone: "UTC", AllowedLateness: time.Hour,
		Aggregations: []window.Aggregation{{Name: "count", Func: window.Count}, {Name: "sum", Func: window.Sum},
			{Name: "mean", Func: window.Mean}, {Name: "min", Func: window.Min}, {Name: "max", Func: window.Max}}}
}

// fixture stores three minutes of one device through the real path: a
// readings log and the partition's worker, then engine output directly.
func fixture(t *testing.T) *httptest.Server {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	lg, err := local.Open(filepath.Join(dir, "log"), local.WithPartitions(1), local.WithConsumers(worker.Group))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	b := &wire.Batch{SchemaVersion: 1, DeviceId: "dev-1", SeqEpoch: 1}
	for i := 0; i < 180; i++ { // three minutes, one reading per second
		b.Readings = append(b.Readings, &wire.Reading{Seq: uint64(i), Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER,
			Value: float64(i), WallNs: t0.Add(time.Duration(i) * time.Second).UnixNano(), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED})
	}
	status, _ := wire.EncodeStatus(&wire.Status{SchemaVersion: 1, DeviceId: "dev-1", Online: true, TimeZone: "Europe/Paris"})
	data, _ := wire.EncodeBatch(b)
	done := make(chan error, 2)
	for _, r := range []intake.Record{{Kind: intake.KindStatus, ReceivedNs: t0.UnixNano(), Site: "site-a", Payload: status},
		{Kind: intake.KindData, ReceivedNs: t0.UnixNano(), Site: "site-a", Payload: data}} {
		if err := lg.Append(context.Background(), 0, []byte("dev-1"), intake.AppendRecord(nil, r), func(_ int64, err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	wk, err := worker.New(worker.Config{Partition: 0, Log: lg, Store: st, Now: func() time.Time { return t0 },
		Pipelines: []window.Pipeline{windowsPipeline(time.Minute), windowsPipeline(15 * time.Minute)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- wk.Run(ctx) }()
	for wk.Stats().Stored < 180 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutDeadLetter(store.DeadLetter{Reason: "malformed", Topic: "gridedge/v1/s/d/data", Received: t0, Payload: []byte{1, 2}}); err != nil {
		t.Fatal(err)
	}
	// Engine output: power_1m minute 10:00 at revisions 1 and 2, one late reading.
	res := func(rev uint32, mean float64) window.Result {
		return window.Result{Pipeline: "power_1m", Key: window.Key{Device: "dev-1", Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER},
			Start: t0.UnixNano(), End: t0.Add(time.Minute).UnixNano(), Revision: rev, Names: []string{"count", "mean"}, Values: []float64{60, mean},
			Count: 60, Coverage: 1, WorstQuality: wire.TimeQuality_TIME_QUALITY_SYNCED}
	}
	late := window.LateReading{Pipeline: "power_1m", Reading: window.Reading{Device: "dev-1", Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER,
		TimeNs: t0.Add(-time.Hour).UnixNano(), Value: 3, Quality: wire.TimeQuality_TIME_QUALITY_SYNCED, SeqEpoch: 1, Seq: 999},
		Windows: []window.Span{{Start: t0.Add(-time.Hour).UnixNano(), End: t0.Add(-59 * time.Minute).UnixNano()}}}
	eb := st.NewBatch(0)
	if err := eb.PutOutput(window.Output{Results: []window.Result{res(1, 29.5), res(2, 30)}, Late: []window.LateReading{late}}); err != nil {
		t.Fatal(err)
	}
	if err := eb.Commit(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "gridedge_test_total", Help: "test"})
	reg.MustRegister(c)
	srv := httptest.NewServer(New(st, WithGatherer(reg), WithDefaultTimeZone("UTC"), WithPipelines([]string{"power_1m", "energy_daily"}),
		WithWindowSizes([]time.Duration{time.Minute, 15 * time.Minute})))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path string, wantStatus int, v any) string {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: status %d, want %d: %s", path, resp.StatusCode, wantStatus, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
	return string(body)
}

func TestDevices(t *testing.T) {
	srv := fixture(t)
	var out struct{ Devices []Device }
	get(t, srv, "/api/v1/devices", 200, &out)
	if len(out.Devices) != 1 {
		t.Fatalf("devices %+v", out.Devices)
	}
	d := out.Devices[0]
	if d.ID != "dev-1" || d.Site != "site-a" || d.ReadingsStored != 180 || !d.Online || d.TimeZone != "Europe/Paris" || d.LastSeen == nil || !d.LastSeen.Equal(t0) {
		t.Fatalf("device %+v", d)
	}
}

func TestWindows(t *testing.T) {
	srv := fixture(t)
	var out struct{ Windows []store.Window }
	get(t, srv, "/api/v1/windows?device=dev-1&channel=mains&quantity=active_power&size=1m&from=2026-11-23T10:01:00Z", 200, &out)
	// 10:01 is closed; 10:02 is still open (its device's watermark has not
	// passed its end and the device is not idle), so it is not served yet.
	if len(out.Windows) != 1 {
		t.Fatalf("windows %+v", out.Windows)
	}
	w := out.Windows[0]
	// Readings 60..119 fall in 10:01; the watermark (10:02:59) has passed its end.
	if !w.Start.Equal(t0.Add(time.Minute)) || !w.End.Equal(t0.Add(2*time.Minute)) || w.Count != 60 || w.Min != 60 || w.Max != 119 || w.Mean != 89.5 || !w.Closed || w.Revision != 1 {
		t.Fatalf("window %+v", w)
	}
	get(t, srv, "/api/v1/windows?device=dev-1&size=15m", 200, &out)
	if len(out.Windows) != 0 {
		t.Fatalf("15m windows %+v: the only one is still open", out.Windows)
	}
}

func TestBadParametersAre400NamingTheParameter(t *testing.T) {
	srv := fixture(t)
	for path, param := range map[string]string{
		"/api/v1/windows":                                                                     "device",
		"/api/v1/windows?device=a/b":                                                          "device",
		"/api/v1/windows?device=d&size=7m":                                                    "size",
		"/api/v1/windows?device=d&size=banana":                                                "size",
		"/api/v1/windows?device=d&channel=m&quantity=watt":                                    "quantity",
		"/api/v1/windows?device=d&from=yesterday":                                             "from",
		"/api/v1/windows?device=d&to=2026-13-01T00:00:00Z":                                    "to",
		"/api/v1/windows?device=d&limit=-1":                                                   "limit",
		"/api/v1/deadletters?limit=x":                                                         "limit",
		"/api/v1/readings?channel=mains&quantity=energy":                                      "device",
		"/api/v1/readings?device=d&quantity=energy":                                           "channel",
		"/api/v1/readings?device=d&channel=m":                                                 "quantity",
		"/api/v1/readings?device=d&channel=m&quantity=energy&from=now":                        "from",
		"/api/v1/results":                                                                     "pipeline",
		"/api/v1/results?pipeline=power_1m&device=a/b":                                        "device",
		"/api/v1/results?pipeline=power_1m&channel=mains":                                     "channel",
		"/api/v1/results?pipeline=power_1m&device=d&quantity=energy":                          "quantity",
		"/api/v1/results?pipeline=power_1m&history=maybe":                                     "history",
		"/api/v1/results?pipeline=power_1m&from=noon":                                         "from",
		"/api/v1/results?pipeline=power_1m&from=2026-11-23T10:00:00Z&to=2026-11-23T09:00:00Z": "to",
		"/api/v1/late":                                                                "device",
		"/api/v1/late?device=dev-1&to=later":                                          "to",
		"/api/v1/late?device=dev-1&limit=0":                                           "limit",
		"/api/v1/late?device=dev-1&from=3000-01-01T00:00:00Z":                         "from",
		"/api/v1/readings?device=d&channel=m&quantity=energy&to=0001-01-01T00:00:01Z": "to",
		"/api/v1/readings?device=d&channel=m&quantity=energy&limit=1000001":           "limit",
		"/api/v1/deadletters?limit=10001":                                             "limit",
		"/api/v1/conflicts?device=a/b":                                                "device",
		"/api/v1/conflicts?limit=0":                                                   "limit",
		"/api/v1/devices?after=a/b":                                                   "after",
	} {
		var e Error
		get(t, srv, path, 400, &e)
		if e.Parameter != param || !strings.Contains(e.Error, param) {
			t.Errorf("%s: error %+v, want parameter %q", path, e, param)
		}
	}
}

func TestDeadLettersHealthMetricsIndex(t *testing.T) {
	srv := fixture(t)
	var out struct{ Deadletters []store.DeadLetter }
	body := get(t, srv, "/api/v1/deadletters", 200, &out)
	if len(out.Deadletters) != 1 || out.Deadletters[0].Reason != "malformed" || out.Deadletters[0].Bytes != 2 {
		t.Fatalf("dead letters %+v", out.Deadletters)
	}
	if strings.Contains(body, "payload") {
		t.Fatalf("the dead-letter list carries payloads: %s", body)
	}
	var one store.DeadLetter
	get(t, srv, fmt.Sprintf("/api/v1/deadletters/%d", out.Deadletters[0].ID), 200, &one)
	if string(one.Payload) != "\x01\x02" || one.Reason != "malformed" {
		t.Fatalf("dead letter by id: %+v", one)
	}
	get(t, srv, "/api/v1/deadletters/12345", 404, nil)
	get(t, srv, "/api/v1/deadletters/x", 400, nil)
	get(t, srv, "/healthz", 200, nil)
	if body := get(t, srv, "/metrics", 200, nil); !strings.Contains(body, "gridedge_test_total") {
		t.Fatalf("metrics page lacks the registry's metrics: %s", body)
	}
	if body := get(t, srv, "/", 200, nil); !strings.Contains(body, "dev-1") || !strings.Contains(body, `data-series="mains"`) {
		t.Fatalf("index page: %s", body)
	}
	get(t, srv, "/nope", 404, nil)
}

func TestReadings(t *testing.T) {
	srv := fixture(t)
	var out struct {
		Readings  []Reading
		Truncated bool
	}
	get(t, srv, "/api/v1/readings?device=dev-1&channel=mains&quantity=active_power&from=2026-11-23T10:01:00Z&to=2026-11-23T10:01:10Z", 200, &out)
	if len(out.Readings) != 10 || out.Truncated {
		t.Fatalf("%d readings (truncated %v), want 10", len(out.Readings), out.Truncated)
	}
	r := out.Readings[0]
	if !r.Time.Equal(t0.Add(time.Minute)) || r.Value != 60 || r.Seq != 60 || r.SeqEpoch != 1 || r.TimeQuality != "synced" {
		t.Fatalf("first reading %+v", r)
	}
	get(t, srv, "/api/v1/readings?device=dev-1&channel=mains&quantity=active_power&limit=5", 200, &out)
	if len(out.Readings) != 5 || !out.Truncated {
		t.Fatalf("limit: %d readings, truncated %v", len(out.Readings), out.Truncated)
	}
}

func TestResultsAndLate(t *testing.T) {
	srv := fixture(t)
	var out struct {
		Pipeline string
		Results  []store.WindowResult
	}
	get(t, srv, "/api/v1/results?pipeline=power_1m&device=dev-1&channel=mains&from=2026-11-23T10:00:00Z&to=2026-11-23T10:01:00Z", 200, &out)
	if len(out.Results) != 1 || out.Results[0].Revision != 2 || out.Results[0].Values["mean"] != 30 || !out.Results[0].End.Equal(t0.Add(time.Minute)) {
		t.Fatalf("latest results %+v", out.Results)
	}
	get(t, srv, "/api/v1/results?pipeline=power_1m&device=dev-1&history=1", 200, &out)
	if len(out.Results) != 2 || out.Results[0].Revision != 1 || out.Results[0].Values["mean"] != 29.5 {
		t.Fatalf("history %+v", out.Results)
	}
	get(t, srv, "/api/v1/results?pipeline=power_1m&device=dev-1&from=2026-11-23T10:00:01Z", 200, &out)
	if len(out.Results) != 0 {
		t.Fatalf("from after the only window start: %+v", out.Results)
	}
	var e Error
	get(t, srv, "/api/v1/results?pipeline=power_5m&device=dev-1", 400, &e)
	if e.Parameter != "pipeline" || !strings.Contains(e.Error, "power_1m") || !strings.Contains(e.Error, "energy_daily") {
		t.Fatalf("unknown pipeline: %+v, want the known ones listed", e)
	}
	var late struct{ Late []store.LateReading }
	get(t, srv, "/api/v1/late?device=dev-1&from=2026-11-23T08:00:00Z&to=2026-11-23T10:00:00Z", 200, &late)
	if len(late.Late) != 1 || late.Late[0].Seq != 999 || !late.Late[0].Windows[0].Start.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("late %+v", late.Late)
	}
	get(t, srv, "/api/v1/late?device=dev-1&to=2026-11-23T09:00:00Z", 200, &late)
	if len(late.Late) != 0 {
		t.Fatalf("late before 09:00: %+v", late.Late)
	}
}
