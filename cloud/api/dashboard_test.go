package api

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/intake"
	"github.com/gridedge/gridedge/cloud/readlog/local"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/cloud/worker"
	"github.com/gridedge/gridedge/shared/poll"
	"github.com/gridedge/gridedge/shared/wire"
)

// hostile is a channel name the wire format accepts (no / # + |) that would
// run script if a page printed it unescaped.
const hostile = `"><img src=x onerror=alert(1)>`

// dashStore stores the records through the real path (readings log and a
// partition's worker) and then the engine results, and returns the store.
// keyed is a log record with its device (the partition key).
type keyed struct {
	device string
	rec    intake.Record
}

func dashStore(t testing.TB, recs []keyed, results []window.Result) *store.Store {
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
	done := make(chan error, len(recs))
	for _, r := range recs {
		if err := lg.Append(context.Background(), 0, []byte(r.device), intake.AppendRecord(nil, r.rec), func(_ int64, err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
	}
	for range recs {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	wk, err := worker.New(worker.Config{Partition: 0, Log: lg, Store: st, Now: time.Now,
		Pipelines: []window.Pipeline{windowsPipeline(time.Minute)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- wk.Run(ctx) }()
	poll.Until(t, 30*time.Second, "the worker to commit every record", func() bool { return wk.Stats().Committed >= int64(len(recs)) })
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if len(results) > 0 {
		b := st.NewBatch(0)
		if err := b.PutOutput(window.Output{Results: results}); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func statusRecord(t testing.TB, site, device string, online bool, tz string, at time.Time) keyed {
	t.Helper()
	p, err := wire.EncodeStatus(&wire.Status{SchemaVersion: 1, DeviceId: device, Online: online, TimeZone: tz,
		ClockQuality: wire.TimeQuality_TIME_QUALITY_SYNCED, BufferedReadings: 7, AgentVersion: hostile})
	if err != nil {
		t.Fatal(err)
	}
	return keyed{device, intake.Record{Kind: intake.KindStatus, ReceivedNs: at.UnixNano(), Site: site, Payload: p}}
}

// powerRecord is one batch of a device: every second of span before end,
// one active power reading per channel.
func powerRecord(t testing.TB, device string, channels []string, end time.Time, span time.Duration) keyed {
	t.Helper()
	b := &wire.Batch{SchemaVersion: 1, DeviceId: device, SeqEpoch: 7}
	seq := uint64(0)
	for s := time.Duration(0); s < span; s += time.Second {
		for i, ch := range channels {
			seq++
			b.Readings = append(b.Readings, &wire.Reading{Seq: seq, Channel: ch, Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER,
				Value: float64(100*(i+1)) + float64(s/time.Second%60), WallNs: end.Add(-span + s).UnixNano(),
				TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED})
		}
	}
	p, err := wire.EncodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	return keyed{device, intake.Record{Kind: intake.KindData, ReceivedNs: end.UnixNano(), Site: "site-a", Payload: p}}
}

// dailyResults are energy_daily results of dev-1 (UTC days before end):
// mains, sub1, the hostile channel and rest.
func dailyResults(end time.Time, days int) []window.Result {
	var out []window.Result
	day := end.Truncate(24 * time.Hour)
	for d := 1; d <= days; d++ {
		start := day.AddDate(0, 0, -d)
		r := func(ch string, q wire.Quantity, name string, v float64) window.Result {
			return window.Result{Pipeline: dailyPipeline, Key: window.Key{Device: "dev-1", Channel: ch, Quantity: q},
				Start: start.UnixNano(), End: start.AddDate(0, 0, 1).UnixNano(), Revision: 1,
				Names: []string{name}, Values: []float64{v}, Coverage: 1, WorstQuality: wire.TimeQuality_TIME_QUALITY_SYNCED}
		}
		out = append(out, r("mains", wire.Quantity_QUANTITY_ACTIVE_POWER, "energy", 3000),
			// A counter on mains as well: the chart takes the power series.
			r("mains", wire.Quantity_QUANTITY_ENERGY, "energy", 999999),
			r("sub1", wire.Quantity_QUANTITY_ACTIVE_POWER, "energy", 1000),
			r(hostile, wire.Quantity_QUANTITY_ACTIVE_POWER, "energy", 500),
			r("rest", wire.Quantity_QUANTITY_UNSPECIFIED, "value", 1500))
	}
	return out
}

func dashServer(t *testing.T, st *store.Store) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(New(st, WithDefaultTimeZone("UTC"), WithPipelines([]string{"power_1m", dailyPipeline, quarterPipeline})))
	t.Cleanup(srv.Close)
	return srv
}

var pathRe = regexp.MustCompile(`<path class="series" data-series="([^"]*)" stroke="[^"]*" d="([^"]*)"`)

func TestDashboardChartsTablesAndEscaping(t *testing.T) {
	end := time.Now().Add(-time.Minute).Truncate(time.Second)
	channels := []string{"mains", "sub1", hostile}
	st := dashStore(t, []keyed{
		statusRecord(t, "site-a", "dev-1", true, `<b>Zone</b>`, end),
		powerRecord(t, "dev-1", channels, end, 70*time.Minute),
	}, dailyResults(end, 3))
	srv := dashServer(t, st)
	body := get(t, srv, "/", 200, nil)

	// Nothing a device sent reaches the page unescaped.
	for _, raw := range []string{"<img", "<b>Zone", "onerror=alert(1)>"} {
		if strings.Contains(body, raw) {
			t.Fatalf("page holds %q unescaped", raw)
		}
	}
	if !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Fatal("the hostile channel is not shown escaped")
	}
	// One power line per channel, each with points, at most maxChartPoints.
	paths := pathRe.FindAllStringSubmatch(body, -1)
	if len(paths) != 3 {
		t.Fatalf("%d power lines, want 3", len(paths))
	}
	for _, p := range paths {
		pts := strings.Count(p[2], "M") + strings.Count(p[2], "L")
		// 1 h of 1 s readings over 240 buckets: every bucket is filled.
		if pts != maxChartPoints {
			t.Fatalf("line %s has %d points, want %d", p[1], pts, maxChartPoints)
		}
	}
	// Three days, each stacked from sub1, the hostile channel and rest,
	// with the mains total as a marker; the mains counter is not used.
	if n := strings.Count(body, `<rect class="seg"`); n != 9 {
		t.Fatalf("%d bar segments, want 9", n)
	}
	if n := strings.Count(body, `<line class="total"`); n != 3 {
		t.Fatalf("%d totals, want 3", n)
	}
	if strings.Contains(body, "999999") {
		t.Fatal("the mains energy counter is charted")
	}
	if !strings.Contains(body, "<td>1500</td><td>3000</td>") {
		t.Fatal("energy table lacks rest 1500 and mains 3000")
	}
	// Health: online, clock quality, backlog.
	for _, want := range []string{`class="on">online`, "clock synced", "backlog 7"} {
		if !strings.Contains(body, want) {
			t.Fatalf("page lacks %q", want)
		}
	}
	// The page allows only its own inline script, by hash.
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	script := regexp.MustCompile(`(?s)<script>(.*)</script>`).FindStringSubmatch(body)
	if csp := resp.Header.Get("Content-Security-Policy"); script == nil || !strings.Contains(csp, "default-src 'none'") ||
		!strings.Contains(csp, "'sha256-"+sha256Base64(script[1])+"'") {
		t.Fatalf("content security policy %q does not allow exactly the page's script", csp)
	}
	// The fragment is the same content without the page around it.
	frag := get(t, srv, "/dashboard/fragment?device=dev-1&span=15m", 200, nil)
	if strings.Contains(frag, "<html") || !strings.Contains(frag, `data-series="mains"`) || strings.Contains(frag, "<img") {
		t.Fatalf("fragment: %.300s", frag)
	}
}

func TestDashboardPagingSearchAndBounds(t *testing.T) {
	now := time.Now()
	var recs []keyed
	for i := range 120 {
		recs = append(recs, statusRecord(t, "site-a", fmt.Sprintf("m-%03d", i), i%3 == 0, "UTC", now))
	}
	srv := dashServer(t, dashStore(t, recs, nil))
	rows := func(body string) int { return strings.Count(body, `<tr class="device`) }

	body := get(t, srv, "/", 200, nil)
	if rows(body) != DashPageSize || !strings.Contains(body, `id="n-devices">120<`) || !strings.Contains(body, `id="n-online">40<`) {
		t.Fatalf("page 1: %d rows", rows(body))
	}
	if !strings.Contains(body, "page 1 of 3") || !strings.Contains(body, `href="/?page=2"`) || strings.Contains(body, `rel="prev"`) {
		t.Fatal("page 1 lacks its paging links")
	}
	body = get(t, srv, "/?page=3", 200, nil)
	if rows(body) != 20 || !strings.Contains(body, ">m-119<") || strings.Contains(body, ">m-099<") || strings.Contains(body, `rel="next"`) {
		t.Fatalf("page 3: %d rows", rows(body))
	}
	body = get(t, srv, "/?q=M-01", 200, nil)
	if rows(body) != 10 || !strings.Contains(body, ">m-010<") || !strings.Contains(body, ">m-019<") || !strings.Contains(body, "10 / 120") {
		t.Fatalf("search: %d rows", rows(body))
	}
	if body = get(t, srv, "/?q=nothing-like-it", 200, nil); rows(body) != 0 || !strings.Contains(body, "No device matches") {
		t.Fatal("a search without match lists devices")
	}
	// The search text is echoed escaped.
	if body = get(t, srv, "/?q=%22%3E%3Cscript%3E", 200, nil); strings.Contains(body, `"><script>`) {
		t.Fatal("search text echoed unescaped")
	}
	for _, bad := range []string{"/?page=0", "/?page=x", "/?span=7m", "/?days=0", "/?days=32", "/?device=a%2Fb",
		"/?q=" + strings.Repeat("a", maxSearchLen+1), "/dashboard/fragment?page=-1"} {
		get(t, srv, bad, 400, nil)
	}
}

func TestChartsAreBounded(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := newBuckets(from, from.Add(time.Hour), maxChartPoints)
	for s := range 100_000 {
		b.add(from.Add(time.Duration(s)*36*time.Millisecond).UnixNano(), float64(s))
	}
	svg := string(lineChart("t", "W", from, from.Add(time.Hour), time.UTC, []lineSeries{{Name: "a", Color: "#000", Points: b.points()}}))
	d := pathRe.FindStringSubmatch(svg)[2]
	if n := strings.Count(d, "L") + strings.Count(d, "M"); n != maxChartPoints {
		t.Fatalf("%d points drawn for 100,000 readings, want %d", n, maxChartPoints)
	}
	// A gap (5 steps where points are 1 apart) starts a new subpath; a
	// series sparser than the buckets is still one line.
	nan := math.NaN()
	pts := []float64{1, 2, 3, 4, nan, nan, nan, nan, 9, 10}
	svg = string(lineChart("t", "W", from, from.Add(time.Hour), time.UTC, []lineSeries{{Name: "a", Color: "#000", Points: pts}}))
	if d = pathRe.FindStringSubmatch(svg)[2]; strings.Count(d, "M") != 2 || strings.Count(d, "L") != 4 {
		t.Fatalf("gap not kept: %s", d)
	}
	sparse := make([]float64, 40)
	for i := range sparse {
		if i%4 != 0 {
			sparse[i] = nan
		}
	}
	svg = string(lineChart("t", "W", from, from.Add(time.Hour), time.UTC, []lineSeries{{Name: "a", Color: "#000", Points: sparse}}))
	if d = pathRe.FindStringSubmatch(svg)[2]; strings.Count(d, "M") != 1 || strings.Count(d, "L") != 9 {
		t.Fatalf("a sparse series is not one line: %s", d)
	}
}

// The dashboard's bounds hold and say so: devices scanned, counts, readings
// per power series.
func TestDashboardBoundsAreShown(t *testing.T) {
	end := time.Now().Add(-time.Minute).Truncate(time.Second)
	recs := []keyed{powerRecord(t, "a-dev", []string{"mains"}, end, 10*time.Minute)}
	for i := range 40 {
		recs = append(recs, statusRecord(t, "site-a", fmt.Sprintf("m-%03d", i), true, "UTC", end))
	}
	st := dashStore(t, recs, nil)
	for i := range 3 {
		if _, err := st.PutDeadLetter(store.DeadLetter{Reason: "malformed", Topic: "t", Received: end, Payload: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(New(st, WithPipelines([]string{dailyPipeline}), withDashLimits(dashLimits{scan: 30, count: 2, readings: 100})))
	t.Cleanup(srv.Close)
	body := get(t, srv, "/?device=a-dev&span=15m", 200, nil)
	for _, want := range []string{`id="n-devices">30+<`, "cover the first 30 devices", `id="n-deadletters">2&#43;<`,
		"mains: only the first 100 readings of the range are drawn"} {
		if !strings.Contains(body, want) {
			t.Fatalf("page lacks %q: %s", want, regexp.MustCompile(`<div class="cards">[\s\S]*?</div>\n</div>`).FindString(body))
		}
	}
	if n := strings.Count(body, `<tr class="device`); n != 30 {
		t.Fatalf("%d rows with 30 devices scanned", n)
	}
	// A device beyond the scanned ones can still be selected.
	if body = get(t, srv, "/?device=m-039", 200, nil); !strings.Contains(body, "<h2>m-039 ") {
		t.Fatal("a device beyond the scan cannot be selected")
	}
}

// BenchmarkDashboard1000Devices renders the page of a fleet of 1,000
// devices, the selected one with an hour of four 1 Hz channels.
func BenchmarkDashboard1000Devices(b *testing.B) {
	end := time.Now().Add(-time.Minute).Truncate(time.Second)
	recs := []keyed{powerRecord(b, "a-dev", []string{"mains", "sub1", "sub2", "sub3"}, end, time.Hour)}
	for i := range 1000 {
		recs = append(recs, statusRecord(b, "site-a", fmt.Sprintf("m-%04d", i), i%2 == 0, "UTC", end))
	}
	st := dashStore(b, recs, nil)
	h := New(st, WithPipelines([]string{dailyPipeline, quarterPipeline}))
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/?device=a-dev", nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
		b.SetBytes(int64(rec.Body.Len()))
	}
}

// bandResult is an anomaly_15m (actual ≥ 0) or forecast_15m (actual NaN)
// result of a window of size at start.
func bandResult(device, channel string, start time.Time, size time.Duration, expected, actual float64, kind int) window.Result {
	r := window.Result{Pipeline: "forecast_15m", Key: window.Key{Device: device, Channel: channel, Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER},
		Start: start.UnixNano(), End: start.Add(size).UnixNano(), Revision: 1,
		Names: []string{"expected", "lower", "upper"}, Values: []float64{expected, expected - 50, expected + 50},
		Coverage: 1, WorstQuality: wire.TimeQuality_TIME_QUALITY_SYNCED}
	if !math.IsNaN(actual) {
		flag := 0.0
		if kind != 0 {
			flag = 1
		}
		r.Pipeline = "anomaly_15m"
		r.Names = append(r.Names, "actual", "score", "anomaly", "kind")
		r.Values = append(r.Values, actual, (actual-expected)/12.5, flag, float64(kind))
	}
	return r
}

func bandServer(t *testing.T, st *store.Store, opts ...Option) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(New(st, append([]Option{WithDefaultTimeZone("UTC"),
		WithPipelines([]string{dailyPipeline, quarterPipeline, "anomaly_15m", "forecast_15m"})}, opts...)...))
	t.Cleanup(srv.Close)
	return srv
}

// pathOf is the d of the first <path class="cls" …> of body (of channel
// when it names one).
func pathOf(t *testing.T, body, cls, channel string) string {
	t.Helper()
	re := regexp.MustCompile(`<path class="` + cls + `"(?: data-series="` + regexp.QuoteMeta(channel) + `")?[^>]* d="([^"]*)"`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s path for %q", cls, channel)
	}
	return m[1]
}

func points(d string) int { return strings.Count(d, "M") + strings.Count(d, "L") }

// The band chart of the selected device is drawn from the stored anomaly
// and forecast results: band, expected, actual, the flagged windows with
// their kind, the next 24 h of forecast; the fleet counts the windows
// flagged in the last 24 h; nothing a device named reaches the page raw.
func TestDashboardAnomalyBands(t *testing.T) {
	end := time.Now().Add(-time.Minute).Truncate(time.Second)
	q := end.Truncate(15 * time.Minute)
	const w = 15 * time.Minute
	var res []window.Result
	for _, ch := range []string{"mains", hostile} {
		for i := 1; i <= 95; i++ { // the scored windows of the last 24 h
			actual, kind := 100.0, 0
			switch {
			case ch == "mains" && i == 10:
				actual, kind = 400, 1 // spike
			case ch == hostile && i == 20:
				actual, kind = 0, 7 // a kind the dashboard does not know
			}
			res = append(res, bandResult("dev-1", ch, q.Add(-time.Duration(i)*w), w, 100, actual, kind))
		}
		for i := 1; i <= 10; i++ { // forecasts of scored windows: not drawn
			res = append(res, bandResult("dev-1", ch, q.Add(-time.Duration(i)*w), w, 5000, math.NaN(), 0))
		}
		for i := range 96 { // the next 24 h
			res = append(res, bandResult("dev-1", ch, q.Add(time.Duration(i)*w), w, 120, math.NaN(), 0))
		}
	}
	// Older than 24 h: neither drawn nor counted.
	res = append(res, bandResult("dev-1", "mains", q.Add(-30*time.Hour), w, 100, 900, 2),
		// Another device's flagged window counts for the fleet.
		bandResult("dev-2", "sub1", q.Add(-2*time.Hour), w, 100, 0, 3))
	st := dashStore(t, []keyed{
		statusRecord(t, "site-a", "dev-1", true, "UTC", end),
		statusRecord(t, "site-a", "dev-3", true, "UTC", end),
		powerRecord(t, "dev-1", []string{"mains"}, end, 2*time.Minute),
	}, res)
	body := get(t, bandServer(t, st), "/?device=dev-1", 200, nil)

	if !strings.Contains(body, `id="n-anomalies">3<`) || !strings.Contains(body, "on 2 devices") {
		t.Fatalf("fleet anomaly card: %s", regexp.MustCompile(`<div class="card[^"]*"><span>anomalies[^\n]*`).FindString(body))
	}
	if n := strings.Count(body, `<figure class="band-chart"`); n != 2 {
		t.Fatalf("%d band charts, want 2", n)
	}
	mains := body[strings.Index(body, `data-channel="mains"`):]
	mains = mains[:strings.Index(mains, "</figure>")]
	// The band is the upper then the lower edge of the 95 scored windows;
	// expected and actual one point each; the forecast the next 96.
	for _, c := range []struct {
		cls  string
		want int
	}{{"band", 2 * 95}, {"expected", 95}, {"actual", 95}, {"band-forecast", 2 * 96}, {"forecast", 96}} {
		if n := points(pathOf(t, mains, c.cls, "mains")); n != c.want {
			t.Fatalf("%s: %d points, want %d", c.cls, n, c.want)
		}
	}
	if strings.Contains(mains, "5.0k") || strings.Contains(mains, "900") {
		t.Fatal("a past window's forecast or a window older than 24 h is drawn")
	}
	if n := strings.Count(mains, `<g class="anomaly"`); n != 1 || !strings.Contains(mains, `<g class="anomaly" data-kind="spike">`) ||
		!strings.Contains(mains, ": spike, actual 400, expected 100 (band 50 to 150), score 24</title>") {
		t.Fatalf("mains: %d flagged windows, want the spike: %s", n, mains)
	}
	if !strings.Contains(mains, "1 window flagged") || !strings.Contains(mains, `class="now"`) {
		t.Fatal("mains chart lacks its caption or now line")
	}
	if !strings.Contains(body, `<g class="anomaly" data-kind="unknown">`) {
		t.Fatal("the unknown kind is not flagged as unknown")
	}
	// The hostile channel's chart, caption and tooltips are escaped.
	if strings.Contains(body, "<img") || strings.Contains(body, "onerror=alert(1)>") {
		t.Fatal("page holds the hostile channel unescaped")
	}
	if n := strings.Count(body, "&lt;img src=x onerror=alert(1)&gt;"); n < 4 {
		t.Fatalf("the hostile channel is shown escaped %d times, want its figure, caption, paths and tooltips", n)
	}

	// A device without analytics results says so.
	if b := get(t, bandServer(t, st), "/?device=dev-3", 200, nil); !strings.Contains(b, `id="bands-empty"`) || strings.Contains(b, `class="band-chart"`) {
		t.Fatal("dev-3 (no results) lacks the empty note")
	}
	// Without the pipelines served: no card, a note.
	b := get(t, dashServer(t, st), "/?device=dev-1", 200, nil)
	if strings.Contains(b, `id="n-anomalies"`) || !strings.Contains(b, "are not configured") {
		t.Fatal("analytics not served: card shown or note missing")
	}
}

// The band charts and the fleet count are bounded: at most maxChartSeries
// channels, bandWindows windows a side (the newest), DashAnomalyScan
// results scanned for the count.
func TestDashboardAnomalyBandsAreBounded(t *testing.T) {
	end := time.Now().Add(-time.Minute).Truncate(time.Second)
	q := end.Truncate(5 * time.Minute)
	var res []window.Result
	for c := range maxChartSeries + 2 {
		ch := fmt.Sprintf("ch-%02d", c)
		n := 3
		if c == 0 {
			n = bandWindows + 30 // 5-minute windows: more than a side holds
		}
		for i := 1; i <= n; i++ {
			res = append(res, bandResult("dev-1", ch, q.Add(-time.Duration(i)*5*time.Minute), 5*time.Minute, 100, 100, 1))
		}
	}
	// dev-2: six channels of 200 5-minute windows, more than a page reads.
	for c := range 6 {
		for i := 1; i <= 200; i++ {
			res = append(res, bandResult("dev-2", fmt.Sprintf("ch-%02d", c), q.Add(-time.Duration(i)*5*time.Minute), 5*time.Minute, 100, 100, 0))
		}
	}
	st := dashStore(t, []keyed{statusRecord(t, "site-a", "dev-1", true, "UTC", end), statusRecord(t, "site-a", "dev-2", true, "UTC", end),
		powerRecord(t, "dev-1", []string{"mains"}, end, time.Minute)}, res)
	lim := defaultDashLimits
	lim.anomalies = 50
	body := get(t, bandServer(t, st, withDashLimits(lim)), "/?device=dev-1", 200, nil)
	if n := strings.Count(body, `<figure class="band-chart"`); n != maxChartSeries || strings.Contains(body, `data-channel="ch-08"`) {
		t.Fatalf("%d band charts, want the first %d", n, maxChartSeries)
	}
	if !strings.Contains(body, fmt.Sprintf("the first %d channels by name are shown", maxChartSeries)) {
		t.Fatal("no note on the channels left out")
	}
	first := body[strings.Index(body, `data-channel="ch-00"`):]
	if n := points(pathOf(t, first, "expected", "ch-00")); n != bandWindows {
		t.Fatalf("ch-00: %d windows drawn, want %d", n, bandWindows)
	}
	if n := strings.Count(first[:strings.Index(first, "</figure>")], `<g class="anomaly"`); n != bandWindows {
		t.Fatalf("ch-00: %d flagged windows drawn, want the newest %d", n, bandWindows)
	}
	body2 := get(t, bandServer(t, st), "/?device=dev-2", 200, nil)
	if n := strings.Count(body2, `<figure class="band-chart"`); n != (maxChartSeries+1)*bandWindows/200+1 ||
		!strings.Contains(body2, "finer than one page reads") {
		t.Fatalf("dev-2: %d charts, or no note on the read stopped", n)
	}
	// The fleet count stops at the scan bound and says so.
	if !strings.Contains(body, `id="n-anomalies">50&#43;<`) {
		t.Fatalf("fleet count not capped: %s", regexp.MustCompile(`id="n-anomalies">[^<]*`).FindString(body))
	}
}

// captureServer hands the server New builds to the test.
func captureServer(p **server) Option { return func(s *server) { *p = s } }

// The fleet's count of flagged windows is reused for a minute, then
// counted again.
func TestDashboardAnomalyCountIsReused(t *testing.T) {
	now := time.Now().Truncate(time.Minute)
	st := dashStore(t, nil, []window.Result{bandResult("dev-1", "mains", now.Add(-time.Hour), 15*time.Minute, 100, 400, 1)})
	var s *server
	New(st, WithPipelines([]string{"anomaly_15m"}), captureServer(&s))
	put := func(r window.Result) {
		b := st.NewBatch(0)
		if err := b.PutOutput(window.Output{Results: []window.Result{r}}); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		at   time.Duration
		want int
	}{{0, 1}, {30 * time.Second, 1}, {anomalyCountTTL, 2}} {
		n, devs, err := s.countAnomalies(now.Add(c.at))
		if err != nil {
			t.Fatal(err)
		}
		if n.N != c.want || n.Capped || devs != c.want {
			t.Fatalf("at +%v: %v flagged on %d devices, want %d on %d", c.at, n, devs, c.want, c.want)
		}
		if c.at == 0 {
			put(bandResult("dev-2", "mains", now.Add(-2*time.Hour), 15*time.Minute, 100, 0, 3))
		}
	}
}

// BenchmarkDashboardAnomalies gathers the page when the fleet's anomaly
// results of the last 24 h reach the scan bound (DashAnomalyScan: 54
// devices of four channels with 95 windows each) and its count is not
// reused, the selected device with its four band charts and forecasts.
func BenchmarkDashboardAnomalies(b *testing.B) {
	end := time.Now().Add(-time.Minute).Truncate(time.Second)
	q := end.Truncate(15 * time.Minute)
	const w = 15 * time.Minute
	var res []window.Result
	for d := range DashAnomalyScan/(4*94) + 1 {
		dev := fmt.Sprintf("m-%03d", d)
		for _, ch := range []string{"mains", "sub1", "sub2", "sub3"} {
			for i := 1; i <= 95; i++ {
				res = append(res, bandResult(dev, ch, q.Add(-time.Duration(i)*w), w, 100, 100, i%40/39))
				if d == 0 {
					res = append(res, bandResult(dev, ch, q.Add(time.Duration(i-1)*w), w, 100, math.NaN(), 0))
				}
			}
		}
	}
	st := dashStore(b, []keyed{statusRecord(b, "site-a", "m-000", true, "UTC", end), powerRecord(b, "m-000", []string{"mains"}, end, time.Minute)}, res)
	var s *server
	New(st, WithPipelines([]string{dailyPipeline, quarterPipeline, "anomaly_15m", "forecast_15m"}), captureServer(&s))
	dq, _ := parseDashQuery(map[string][]string{"device": {"m-000"}})
	now := time.Now()
	b.ResetTimer()
	for b.Loop() {
		s.anomalies.at = time.Time{} // count again
		v, err := s.gatherDashboard(dq, now)
		if err != nil || !v.Fleet.Anomalies.Capped || v.Detail == nil || len(v.Detail.Bands.Charts) != 4 {
			b.Fatal(err, v.Fleet.Anomalies)
		}
	}
}
