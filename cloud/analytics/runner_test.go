package analytics_test

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridedge/gridedge/cloud/analytics"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

// day0 is a Monday, 00:00 in Europe/Paris.
var day0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.FixedZone("CET", 3600))

// synthetic is 16 days of a household-like main meter: a night base, a
// daytime hump, an evening peak, more at weekends, seeded noise (Wh per
// quarter hour).
func synthetic() map[string][]win {
	rng := rand.New(rand.NewPCG(1, 2))
	var ws []win
	for t := day0; t.Before(day0.AddDate(0, 0, 16)); t = t.Add(res) {
		h := float64(t.Hour()) + float64(t.Minute())/60
		v := 60 + 50*math.Max(0, math.Sin(2*math.Pi*(h-7)/24))
		if h >= 18 && h < 21 {
			v += 60
		}
		if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
			v += 20
		}
		ws = append(ws, win{t.UTC(), math.Max(1, v+rng.NormFloat64()*6)})
	}
	return map[string][]win{"mains": ws}
}

func flagged(h *replay, ch string) []store.WindowResult {
	var out []store.WindowResult
	for _, r := range h.results("anomaly_15m", ch) {
		if r.Values["anomaly"] == 1 {
			out = append(out, r)
		}
	}
	return out
}

// A clean day is not flagged; a 3-hour left-on appliance, a 3-hour stuck
// meter and a spike injected into a copy are, each with its kind, and
// nothing else is.
func TestInjectedAnomaliesFlaggedCleanDayNot(t *testing.T) {
	src := synthetic()
	last := day0.AddDate(0, 0, 15)

	clean := newReplay(t, src, last)
	clean.runEvery(last.AddDate(0, 0, 1), time.Hour)
	// The first cycle (an hour in) scores the day before it, then each
	// window once.
	if n, want := len(clean.results("anomaly_15m", "mains")), int(47*time.Hour/res); n != want {
		t.Fatalf("%d anomaly results on the clean copy, want every window from a day before the first cycle (%d)", n, want)
	}
	for _, r := range flagged(clean, "mains") {
		t.Errorf("clean day flagged: %s kind %v value %.1f band [%.1f, %.1f]", r.Start.In(day0.Location()), r.Values["kind"], r.Values["actual"], r.Values["lower"], r.Values["upper"])
	}

	at := func(hour, minute int) time.Time {
		return last.Add(time.Duration(hour)*time.Hour + time.Duration(minute)*time.Minute)
	}
	type span struct {
		from, to time.Time
		kind     analytics.Kind
	}
	want := []span{
		{at(2, 0), at(5, 0), analytics.KindHigh},     // left on: +150 Wh per quarter hour
		{at(8, 0), at(11, 0), analytics.KindLow},     // stuck at zero
		{at(14, 0), at(14, 15), analytics.KindSpike}, // +400 Wh once
	}
	dirty := clone(src)
	for i, w := range dirty["mains"] {
		switch {
		case !w.start.Before(want[0].from) && w.start.Before(want[0].to):
			dirty["mains"][i].wh += 150
		case !w.start.Before(want[1].from) && w.start.Before(want[1].to):
			dirty["mains"][i].wh = 0
		case w.start.Equal(want[2].from):
			dirty["mains"][i].wh += 400
		}
	}
	reg := prometheus.NewRegistry()
	h := newReplay(t, dirty, last)
	reg.MustRegister(h.r.Metrics()...)
	h.runEvery(last.AddDate(0, 0, 1), time.Hour)
	found := make([]bool, len(want))
	for _, r := range flagged(h, "mains") {
		k := analytics.Kind(r.Values["kind"])
		ok := false
		for i, s := range want {
			if r.Start.Before(s.from) || !r.Start.Before(s.to) {
				continue
			}
			// The first windows of a left-on appliance may be spikes
			// until the run is long enough.
			ok = ok || k == s.kind || (s.kind == analytics.KindHigh && k == analytics.KindSpike)
			found[i] = found[i] || k == s.kind
		}
		if !ok {
			t.Errorf("flagged outside the injected anomalies: %s kind %v", r.Start.In(day0.Location()), k)
		}
	}
	for i, s := range want {
		if !found[i] {
			t.Errorf("%v from %s not flagged", s.kind, s.from)
		}
	}
	for _, k := range analytics.Kinds() {
		if got := gathered(t, reg, "gridedge_analytics_anomalies_total", k.String()); got < 1 {
			t.Errorf("gridedge_analytics_anomalies_total{kind=%q} = %v, want ≥ 1", k, got)
		}
	}
}

// On the household file, one injected anomaly of each kind is flagged with
// its kind, and the untouched copy's main meter has no alarm on Monday
// 18 December.
func TestHouseholdInjectedFlagged(t *testing.T) {
	src := householdWindows(t)
	start, end := src["mains"][0].start, replayEnd(src)
	var eps []episode
	for kind, i := range map[string]int{"left_on": 0, "stuck_zero": 2, "spike": 4} {
		eps = append(eps, injections(t)[kind][i])
	}
	h := newReplay(t, inject(src, eps), start)
	h.runEvery(end.Add(time.Hour), time.Hour)
	evs := flaggedEvents(h)
	for _, ep := range eps {
		hit := false
		for _, e := range evs {
			hit = hit || (e.overlaps(ep) && e.kind == detectorKind[ep.kind])
		}
		if !hit {
			t.Errorf("%s on %v at %s not flagged as %v", ep.kind, ep.channels, ep.from, detectorKind[ep.kind])
		}
	}
	clean := newReplay(t, src, start)
	monday := time.Date(2006, 12, 18, 0, 0, 0, 0, paris(t))
	clean.runEvery(monday.AddDate(0, 0, 1).Add(time.Hour), time.Hour)
	for _, r := range flagged(clean, "mains") {
		if !r.Start.Before(monday) && r.Start.Before(monday.AddDate(0, 0, 1)) {
			t.Errorf("untouched main meter flagged on Monday: %s", r.Start)
		}
	}
}

// gathered is the value of a metric with the given label value (kind or
// model), or of the unlabelled metric when label is "".
func gathered(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s{%s} not found", name, label)
	return 0
}

// The forecast covers the next 24 hours from the window holding now,
// cycles run only on the schedule's ticks, an idle cycle writes nothing,
// and once an actual arrives its error is counted.
func TestForecastHorizonAndSchedule(t *testing.T) {
	src := synthetic()
	now := day0.AddDate(0, 0, 14).Add(5 * time.Minute)
	ticks := make(chan time.Time)
	done := make(chan analytics.CycleStats)
	h := newReplay(t, src, now, analytics.WithTicks(ticks), analytics.WithCycleHook(func(cs analytics.CycleStats) { done <- cs }))
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.r.Metrics()...)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- h.r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Error(err)
		}
	}()
	cycle := func() analytics.CycleStats {
		ticks <- h.now
		return <-done
	}

	h.publish()
	cs := cycle()
	if cs.Refitted != 1 || cs.Forecasts != 96 {
		t.Fatalf("first cycle %+v, want 1 device refitted and 96 forecasts", cs)
	}
	fc := h.results("forecast_15m", "mains")
	first := now.Truncate(res)
	if len(fc) != 96 || !fc[0].Start.Equal(first) || !fc[95].Start.Equal(first.Add(24*time.Hour-res)) {
		t.Fatalf("%d forecasts from %v to %v, want 96 from %v", len(fc), fc[0].Start, fc[len(fc)-1].Start, first)
	}
	for i, f := range fc {
		if i > 0 && !f.Start.Equal(fc[i-1].End) {
			t.Fatalf("forecast gap before %v", f.Start)
		}
		if !(f.Values["lower"] <= f.Values["expected"] && f.Values["expected"] <= f.Values["upper"]) || f.Revision != 1 || f.Quantity != "active_power" {
			t.Fatalf("forecast %+v", f)
		}
	}
	firstForecast := fc[0].Values["expected"]

	// Nothing new: the cycle runs, refits nothing, writes nothing.
	if cs := cycle(); cs.Changed != 0 || cs.Refitted != 0 || cs.Forecasts != 0 || cs.Scored != 0 {
		t.Fatalf("idle cycle %+v, want no work", cs)
	}

	// 20 minutes later the first window's actual has arrived: it is scored,
	// its forecast error counted, and the horizon moved on.
	h.now = now.Add(20 * time.Minute)
	h.publish()
	cs = cycle()
	if cs.Refitted != 1 || cs.Scored < 1 {
		t.Fatalf("cycle after new data %+v", cs)
	}
	fc = h.results("forecast_15m", "mains")
	if lastStart := fc[len(fc)-1].Start; !lastStart.Equal(first.Add(24 * time.Hour)) {
		t.Fatalf("forecast ends at %v, want %v", lastStart, first.Add(24*time.Hour))
	}
	var actual float64
	for _, w := range src["mains"] {
		if w.start.Equal(first) {
			actual = w.wh
		}
	}
	if n := gathered(t, reg, "gridedge_analytics_forecast_windows_total", "seasonal"); n != 1 {
		t.Fatalf("forecast windows compared %v, want 1", n)
	}
	if got, want := gathered(t, reg, "gridedge_analytics_forecast_abs_error_sum", "seasonal"), math.Abs(actual-firstForecast); math.Abs(got-want) > 1e-9 {
		t.Fatalf("abs error sum %v, want %v", got, want)
	}
	if n := gathered(t, reg, "gridedge_analytics_forecast_windows_total", "naive"); n != 1 {
		t.Fatalf("naive windows compared %v, want 1", n)
	}
	if n := gathered(t, reg, "gridedge_analytics_cycles_total", ""); n != 3 {
		t.Fatalf("%v cycles, want 3 (one per tick)", n)
	}
}

// putDevice stores two days of flat results for a device, newest reading
// at the end.
func putDevice(t *testing.T, st *store.Store, id string, from time.Time, newest int64) {
	t.Helper()
	var out window.Output
	for s := from; s.Before(from.Add(48 * time.Hour)); s = s.Add(res) {
		out.Results = append(out.Results, window.Result{Pipeline: "energy_15m", Key: window.Key{Device: id, Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER},
			Start: s.UnixNano(), End: s.Add(res).UnixNano(), Revision: 1, Names: []string{"energy"}, Values: []float64{100}, Count: 1, Coverage: 1})
	}
	b := st.NewBatch(0)
	if err := b.PutOutput(out); err != nil {
		t.Fatal(err)
	}
	if err := b.PutDevice(&store.DeviceInfo{ID: id, MaxEventNs: newest}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

// At most MaxDevicesPerCycle devices are refitted per cycle; the others
// go first in the next cycle, and a device without new data is left alone.
func TestDevicesPerCycleBound(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.WithSync(false))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := day0.AddDate(0, 0, 2)
	for _, id := range []string{"a", "b", "c"} {
		putDevice(t, st, id, day0, now.UnixNano())
	}
	cfg := analytics.DefaultConfig()
	cfg.MaxDevicesPerCycle = 2
	r, err := analytics.New(cfg, st, analytics.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []analytics.CycleStats{{Changed: 3, Refitted: 2, Deferred: 1}, {Changed: 1, Refitted: 1}, {}} {
		cs, err := r.Cycle(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if cs.Changed != want.Changed || cs.Refitted != want.Refitted || cs.Deferred != want.Deferred {
			t.Fatalf("cycle %d: %+v, want changed %d refitted %d deferred %d", i, cs, want.Changed, want.Refitted, want.Deferred)
		}
	}
	for _, id := range []string{"a", "b", "c"} {
		n := 0
		if err := st.Results(store.ResultQuery{Pipeline: "forecast_15m", Device: id}, func(*store.WindowResult) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != 96 {
			t.Errorf("device %s: %d forecasts, want 96", id, n)
		}
	}
	// New data for one device: only it is refitted.
	putDevice(t, st, "b", day0, now.UnixNano()+1)
	if cs, _ := r.Cycle(context.Background()); cs.Changed != 1 || cs.Refitted != 1 {
		t.Fatalf("after new data for b: %+v", cs)
	}
}

func TestConfigRejected(t *testing.T) {
	for name, mod := range map[string]func(*analytics.Config){
		"resolution 7m":      func(c *analytics.Config) { c.Resolution = 7 * time.Minute },
		"resolution 30s":     func(c *analytics.Config) { c.Resolution = 30 * time.Second },
		"same pipelines":     func(c *analytics.Config) { c.Forecast = c.Anomaly },
		"no source":          func(c *analytics.Config) { c.Source = "" },
		"history 12h":        func(c *analytics.Config) { c.History = 12 * time.Hour },
		"horizon 30d":        func(c *analytics.Config) { c.Horizon = 30 * 24 * time.Hour },
		"zero devices":       func(c *analytics.Config) { c.MaxDevicesPerCycle = 0 },
		"z below zero":       func(c *analytics.Config) { c.Params.Z = -1 },
		"spike under band":   func(c *analytics.Config) { c.Params.SpikeZ = 1 },
		"unknown zone":       func(c *analytics.Config) { c.TimeZone = "Mars/Olympus" },
		"lookback > history": func(c *analytics.Config) { c.Lookback = c.History + time.Hour },
		"high quantile 2":    func(c *analytics.Config) { c.Params.HighQuantile = 2 },
	} {
		cfg := analytics.DefaultConfig()
		mod(&cfg)
		if _, err := analytics.New(cfg, nil); err == nil || !strings.Contains(err.Error(), "analytics:") {
			t.Errorf("%s: err %v, want a clear error", name, err)
		}
	}
	if err := analytics.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkRefit is the cost of one device's refit: four series of 15
// days of quarter hours read, fitted and compared with its stored bands.
func BenchmarkRefit(b *testing.B) {
	src := synthetic()
	for _, ch := range []string{"sub1", "sub2", "sub3"} {
		src[ch] = src["mains"]
	}
	h := newReplay(b, src, day0.AddDate(0, 0, 16))
	h.publish()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		if err := func() error {
			bt := h.st.NewBatch(0)
			if err := bt.PutDevice(&store.DeviceInfo{ID: device, MaxEventNs: int64(i + 1)}); err != nil {
				return err
			}
			return bt.Commit()
		}(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if cs, err := h.r.Cycle(context.Background()); err != nil || cs.Refitted != 1 {
			b.Fatal(cs, err)
		}
	}
}
