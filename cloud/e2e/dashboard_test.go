package e2e

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/edge/sim"
	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/poll"
)

// chromiumPath finds Debian's chromium (installed by .ci/install-deps). In
// CI a missing browser fails the test; elsewhere it skips it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not installed (.ci/install-deps installs it)")
	}
	t.Skip("chromium not installed: apt-get install chromium")
	return ""
}

// browse loads url in headless Chromium with action (--dump-dom prints
// the DOM after the page's scripts ran; virtual time advances by budget,
// so its timers fire) and returns what it printed and what the browser
// logged, console messages included.
func browse(t *testing.T, chromium, url string, budget time.Duration, action ...string) (out, logs string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--disable-extensions", "--disable-background-networking", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0", "--window-size=1280,1600",
		"--virtual-time-budget=" + strconv.FormatInt(budget.Milliseconds(), 10)}, action...)
	cmd := exec.CommandContext(ctx, chromium, append(args, url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String(), stderr.String()
}

// consoleErrors are the lines of a Chromium log that report a console
// message (the dashboard writes none: any is an error, a script error or a
// content-security-policy refusal) or an uncaught exception.
var consoleErrors = regexp.MustCompile(`(?m)^.*(Uncaught|:CONSOLE\(|Refused to).*$`)

// TestDashboardInChromium runs the demo's shape end to end — the collector
// binary, Mosquitto, household meters from the simulator covering the last
// two local days — and loads the dashboard in headless Chromium: the power
// lines and the stacked daily energy bars are drawn with data, the device
// rows are listed, the page refreshed itself, no script error was logged;
// a screenshot goes to the test's artifact directory.
func TestDashboardInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	// The scanner must see a script error where there is one.
	if _, logs := browse(t, chromium, "data:text/html,<script>null.boom()</script>", time.Second, "--dump-dom"); consoleErrors.FindString(logs) == "" {
		t.Fatalf("a page throwing an error logged no console error; the check cannot work:\n%s", logs)
	}

	broker := mqtttest.Start(t)
	// The analytics refit every 2 s instead of every 10 minutes, so the
	// band charts have results within the test.
	cfgFile := filepath.Join(t.TempDir(), "collector.yaml")
	if err := os.WriteFile(cfgFile, []byte("analytics:\n  every: 2s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startCollector(t, broker.URL(), t.TempDir(), "-config", cfgFile)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	// From an hour before yesterday's local midnight to a minute ago: one
	// closed local day, and today so far.
	now := time.Now()
	y, m, d := now.In(paris).Date()
	start := time.Date(y, m, d-1, 0, 0, 0, 0, paris).Add(-time.Hour).Truncate(time.Minute)
	end := now.Add(-time.Minute).Truncate(time.Minute)
	res, err := sim.Run(withTimeout(t, 3*time.Minute), sim.Config{
		MQTTURL: broker.URL(), Site: "demo", Meters: 3, Buffer: sim.BufferMemory,
		Start: start, Duration: end.Sub(start), Interval: time.Minute, Speed: 1e6,
		DataDir: t.TempDir(), AckTimeout: 3 * time.Second, DrainTimeout: 2 * time.Minute,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		t.Fatalf("simulator: %v (unacked %d)", err, res.Unacked)
	}
	var devs struct {
		Devices []struct {
			ReadingsStored uint64 `json:"readings_stored"`
		}
	}
	poll.Until(t, time.Minute, "every reading stored", func() bool {
		c.getJSON("/api/v1/devices", nil, &devs)
		n := uint64(0)
		for _, d := range devs.Devices {
			n += d.ReadingsStored
		}
		return len(devs.Devices) == 3 && n == res.Generated
	})
	// Yesterday's energy_daily results (with rest) are committed.
	var out struct {
		Results []struct{ Channel string }
	}
	poll.Until(t, time.Minute, "yesterday's daily energy with rest", func() bool {
		c.getJSON("/api/v1/results", map[string][]string{"pipeline": {"energy_daily"}, "device": {"sim-0001"}, "channel": {"rest"}}, &out)
		return len(out.Results) > 0
	})

	// The analytics scored today's quarter hours (a day of history before
	// them) and forecast the next 24 h.
	for _, pipeline := range []string{"anomaly_15m", "forecast_15m"} {
		poll.Until(t, time.Minute, pipeline+" results of sim-0001", func() bool {
			c.getJSON("/api/v1/results", map[string][]string{"pipeline": {pipeline}, "device": {"sim-0001"}, "channel": {"mains"}}, &out)
			return len(out.Results) > 0
		})
	}

	url := "http://" + c.httpAddr + "/?device=sim-0001"
	dom, logs := browse(t, chromium, url, 12*time.Second, "--dump-dom")
	if errs := consoleErrors.FindAllString(logs, -1); len(errs) > 0 {
		t.Fatalf("console errors:\n%s", strings.Join(errs, "\n"))
	}
	// Power: one line per channel (mains, sub1..sub3), each with points.
	lines := regexp.MustCompile(`<path class="series" data-series="([^"]*)"[^>]* d="([^"]*)"`).FindAllStringSubmatch(dom, -1)
	if len(lines) != 4 {
		t.Fatalf("%d power lines, want 4 (mains, sub1..sub3)", len(lines))
	}
	for _, l := range lines {
		if n := strings.Count(l[2], "L"); n < 20 {
			t.Fatalf("power line %s has %d segments; want the last hour's minutes", l[1], n)
		}
	}
	// Energy: stacked segments of sub1..sub3 and rest (a circuit that used
	// nothing that day has none), a mains total per day with data: the hour
	// before yesterday, yesterday, and today's closed quarter hours.
	if n := strings.Count(dom, `class="seg`); n < 4 {
		t.Fatalf("%d stacked energy segments, want at least 4", n)
	}
	if n := strings.Count(dom, `<line class="total"`); n < 2 {
		t.Fatalf("%d daily totals, want at least 2", n)
	}
	if !strings.Contains(dom, `data-circuit="rest"`) {
		t.Fatal("no rest segment")
	}
	// Anomaly bands: a chart per channel, each with its band, actual
	// values and a forecast band to the right of now.
	if n := strings.Count(dom, `<figure class="band-chart"`); n < 4 {
		t.Fatalf("%d band charts, want one per channel (mains, sub1..sub3, rest)", n)
	}
	for _, cls := range []string{"band", "actual", "band-forecast", "forecast"} {
		if !regexp.MustCompile(`<path class="` + cls + `"[^>]* d="M[^"]*L`).MatchString(dom) {
			t.Fatalf("no %s path with points in the band charts", cls)
		}
	}
	if !strings.Contains(dom, `id="n-anomalies"`) {
		t.Fatal("no fleet anomaly count")
	}
	if n := strings.Count(dom, `<tr class="device`); n != 3 {
		t.Fatalf("%d device rows, want 3", n)
	}
	// The script replaced the content from the fragment at least once.
	if !regexp.MustCompile(`id="refresh-status"[^>]*>updated `).MatchString(dom) {
		t.Fatalf("the page did not refresh itself: %s", regexp.MustCompile(`<span id="refresh-status"[^<]*</span>`).FindString(dom))
	}

	shot := filepath.Join(t.ArtifactDir(), "dashboard.png")
	browse(t, chromium, url, 2*time.Second, "--screenshot="+shot, "--hide-scrollbars")
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s (go test -artifacts -outputdir DIR keeps it)", shot)
}
