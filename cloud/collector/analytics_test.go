package collector

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/analytics"
	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

// The analytics run in the collector by default: on a tick of their
// schedule they read energy_15m results, and their anomaly_15m and
// forecast_15m results and metrics are served by the API.
func TestAnalyticsServedThroughTheAPI(t *testing.T) {
	cfg := testConfig(t, "", t.TempDir())
	cfg.EmbeddedBroker = "127.0.0.1:0"
	now := time.Date(2026, 11, 4, 12, 5, 0, 0, time.UTC)
	ticks := make(chan time.Time)
	done := make(chan analytics.CycleStats, 1)
	c, err := New(cfg, WithLogger(testLogger(t)), WithAnalyticsOptions(analytics.WithClock(func() time.Time { return now }),
		analytics.WithTicks(ticks), analytics.WithCycleHook(func(cs analytics.CycleStats) { done <- cs })))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Error(err)
		}
	}()
	<-c.Ready()

	// Two days of quarter-hour energies as the workers commit them, the
	// last one a spike.
	const dev = "dev-a"
	var out window.Output
	first := now.Add(-48 * time.Hour).Truncate(15 * time.Minute)
	last := now.Truncate(15 * time.Minute).Add(-15 * time.Minute)
	for s := first; !s.After(last); s = s.Add(15 * time.Minute) {
		v := 100 + float64(s.Minute()%3)
		if s.Equal(last) {
			v = 1000
		}
		out.Results = append(out.Results, window.Result{Pipeline: "energy_15m",
			Key:   window.Key{Device: dev, Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER},
			Start: s.UnixNano(), End: s.Add(15 * time.Minute).UnixNano(), Revision: 1,
			Names: []string{"energy", "count"}, Values: []float64{v, 900}, Count: 900, Coverage: 1})
	}
	b := c.Store().NewBatch(readlog.PartitionFor([]byte(dev), cfg.Partitions))
	if err := b.PutOutput(out); err != nil {
		t.Fatal(err)
	}
	if err := b.PutDevice(&store.DeviceInfo{ID: dev, MaxEventNs: now.UnixNano()}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	ticks <- now
	if cs := <-done; cs.Refitted != 1 || cs.Flagged != 1 || cs.Forecasts != 96 {
		t.Fatalf("cycle %+v, want one device refitted, one window flagged, 96 forecasts", cs)
	}

	results := func(pipeline string) []store.WindowResult {
		var got struct{ Results []store.WindowResult }
		getJSON(t, "http://"+c.HTTPAddr()+"/api/v1/results?"+url.Values{"pipeline": {pipeline}, "device": {dev}, "limit": {"1000"}}.Encode(), &got)
		return got.Results
	}
	anom := results("anomaly_15m")
	if len(anom) == 0 {
		t.Fatal("no anomaly_15m results served")
	}
	spike := anom[len(anom)-1]
	if !spike.Start.Equal(last) || spike.Values["anomaly"] != 1 || analytics.Kind(spike.Values["kind"]) != analytics.KindSpike || spike.Values["actual"] != 1000 {
		t.Fatalf("last anomaly result %+v, want the spike flagged", spike)
	}
	for _, r := range anom[:len(anom)-1] {
		if r.Values["anomaly"] != 0 {
			t.Fatalf("flat window flagged: %+v", r)
		}
	}
	if fc := results("forecast_15m"); len(fc) != 96 || !fc[0].Start.Equal(now.Truncate(15*time.Minute)) {
		t.Fatalf("%d forecasts served, want 96 from %v", len(fc), now.Truncate(15*time.Minute))
	}
	resp, err := http.Get("http://" + c.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `gridedge_analytics_anomalies_total{kind="spike"} 1`) {
		t.Fatalf("/metrics lacks the spike count:\n%s", body)
	}
}

func TestAnalyticsConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte("mqtt_url: tcp://127.0.0.1:1883\nanalytics:\n  enabled: false\n"), "off.yaml")
	if err != nil || cfg.Validate() != nil {
		t.Fatal(err, cfg.Validate())
	}
	if names := servedPipelines(cfg, collectorPipelines(cfg)); slices.Contains(names, "anomaly_15m") {
		t.Fatalf("disabled analytics served: %v", names)
	}
	cfg, err = ParseConfig([]byte("mqtt_url: tcp://127.0.0.1:1883\nanalytics:\n  every: 5m\n  params: {z: 3, spike_z: 8}\n"), "on.yaml")
	if err != nil || cfg.Validate() != nil {
		t.Fatal(err, cfg.Validate())
	}
	if !cfg.Analytics.Enabled || cfg.Analytics.Every != 5*time.Minute || cfg.Analytics.Params.Z != 3 || cfg.Analytics.Params.Persist != analytics.DefaultParams().Persist {
		t.Fatalf("analytics section read as %+v", cfg.Analytics)
	}
	if names := servedPipelines(cfg, collectorPipelines(cfg)); !slices.Contains(names, "forecast_15m") {
		t.Fatalf("enabled analytics not served: %v", names)
	}
	for yaml, want := range map[string]string{
		"analytics:\n  source: energy_5m\n":          "not a configured pipeline",
		"analytics:\n  anomaly_pipeline: power_1m\n": "also a configured window pipeline",
		"analytics:\n  resolution: 7m\n":             "resolution",
		"analytics:\n  params: {persist: 0}\n":       "persist",
		"analytics:\n  max_devices_per_cycle: -1\n":  "max_devices_per_cycle",
		"analytics:\n  unknown_key: 1\n":             "unknown_key",
	} {
		cfg, err := ParseConfig([]byte("mqtt_url: tcp://127.0.0.1:1883\n"+yaml), "bad.yaml")
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to mention %q", yaml, err, want)
		}
	}
	// Without energy_15m (pipelines of one's own) the default analytics
	// stay off instead of failing.
	cfg, err = ParseConfig([]byte("mqtt_url: tcp://127.0.0.1:1883\npipelines:\n  - name: p\n    inputs: [{quantity: active_power}]\n    window: {kind: tumbling, size: 1m}\n    aggregations: [count]\n"), "own.yaml")
	if err != nil || cfg.Validate() != nil {
		t.Fatal(err, cfg.Validate())
	}
	if cfg.Analytics.active(collectorPipelines(cfg)) {
		t.Fatal("analytics active without their source pipeline")
	}
}
