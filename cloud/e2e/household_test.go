package e2e

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	engine "github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/edge/sim"
	"github.com/gridedge/gridedge/shared/mqtttest"
)

const householdCSV = "../../testdata/household/uci-household-2006-12.csv"

// householdDays computes each Europe/Paris day's energy straight from the
// file: mains W → Wh per minute is W/60 (the file gives kW), the sub-meters
// give Wh per minute, rest = mains − Σ subs.
func householdDays(t *testing.T, path string) map[string]map[string]float64 {
	t.Helper()
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	days := map[string]map[string]float64{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if line == 1 {
			continue
		}
		fs := strings.Split(sc.Text(), ";")
		if len(fs) != 9 || strings.Contains(sc.Text(), "?") {
			t.Fatalf("%s:%d: unexpected row %q", path, line, sc.Text())
		}
		ts, err := time.ParseInLocation("2/1/2006 15:04:05", fs[0]+" "+fs[1], paris)
		if err != nil {
			t.Fatalf("%s:%d: %v", path, line, err)
		}
		num := func(i int) float64 {
			v, err := strconv.ParseFloat(fs[i], 64)
			if err != nil {
				t.Fatalf("%s:%d: %v", path, line, err)
			}
			return v
		}
		day := ts.Format(time.DateOnly)
		if days[day] == nil {
			days[day] = map[string]float64{}
		}
		d := days[day]
		d["mains"] += num(2) * 1000 / 60
		d["sub1"] += num(6)
		d["sub2"] += num(7)
		d["sub3"] += num(8)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, d := range days {
		d["rest"] = d["mains"] - d["sub1"] - d["sub2"] - d["sub3"]
	}
	return days
}

// testPipelines is the shipped configuration with three changes, each
// needed to make the comparison exact and meaningful:
//   - time_zone UTC: Europe/Paris days can then only come from the zone the
//     replayed agent announces in its status message;
//   - energy_daily max_gap 1m: the file has one reading a minute, so each
//     reading stands for exactly its minute, including the file's last;
//   - energy_daily idle_timeout 3s: the last (partial) day, which no later
//     reading closes, is emitted provisional once the replay goes quiet.
func testPipelines(t *testing.T) string {
	t.Helper()
	yml := string(engine.DefaultYAML())
	for _, r := range []struct{ old, new string }{
		{"time_zone: Europe/Paris", "time_zone: UTC"},
		{"    idle_timeout: 1h\n    max_gap: 5m\n", "    idle_timeout: 3s\n    max_gap: 1m\n"},
	} {
		if strings.Count(yml, r.old) != 1 {
			t.Fatalf("shipped pipelines changed: %q is not there exactly once", r.old)
		}
		yml = strings.Replace(yml, r.old, r.new, 1)
	}
	path := filepath.Join(t.TempDir(), "pipelines.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type resultJSON struct {
	Pipeline    string             `json:"pipeline"`
	Device      string             `json:"device"`
	Channel     string             `json:"channel"`
	Start       time.Time          `json:"start"`
	End         time.Time          `json:"end"`
	Revision    uint32             `json:"revision"`
	Provisional bool               `json:"provisional"`
	Values      map[string]float64 `json:"values"`
	Count       int64              `json:"count"`
}

// TestHouseholdReplayDailyEnergy replays the real household file through
// gridedge-sim (a real agent) and Mosquitto into the collector binary, and
// requires the collector's energy_daily results — per Europe/Paris day,
// partial first and last days included — for mains, each sub-meter and the
// derived rest to equal a direct computation over the file.
func TestHouseholdReplayDailyEnergy(t *testing.T) {
	if _, err := os.Stat(householdCSV); err != nil {
		t.Fatalf("household data: %v", err)
	}
	want := householdDays(t, householdCSV)
	broker := mqtttest.Start(t)
	// The agent may publish its first batch just before its status; a
	// generous -zone-grace keeps a loaded machine from applying it first.
	c := startCollector(t, broker.URL(), t.TempDir(), "-pipelines", testPipelines(t), "-site-tz", "UTC", "-zone-grace", "30s")

	res, err := sim.Run(withTimeout(t, 4*time.Minute), sim.Config{
		MQTTURL:      broker.URL(),
		Site:         "sceaux",
		Meters:       1,
		DevicePrefix: "house-",
		Profile:      sim.ProfileReplay,
		ReplayFile:   householdCSV,
		Speed:        15_000, // 5,000 file minutes in about 20 s
		DataDir:      t.TempDir(),
		AckTimeout:   3 * time.Second,
		DrainTimeout: 2 * time.Minute,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatalf("simulator: %v (unacked %d)", err, res.Unacked)
	}
	const device = "house-0001"

	paris, _ := time.LoadLocation("Europe/Paris")
	var got map[string]map[string]float64
	var mismatch string
	deadline := time.Now().Add(90 * time.Second)
	for {
		var out struct {
			Results []resultJSON `json:"results"`
		}
		c.getJSON("/api/v1/results", url.Values{"pipeline": {"energy_daily"}, "device": {device}}, &out)
		got = map[string]map[string]float64{}
		mismatch = ""
		for _, r := range out.Results {
			local := r.Start.In(paris)
			if local.Hour() != 0 || local.Minute() != 0 || !r.End.Equal(time.Date(local.Year(), local.Month(), local.Day()+1, 0, 0, 0, 0, paris)) {
				t.Fatalf("%s window [%v, %v) is not a Europe/Paris day", r.Channel, r.Start, r.End)
			}
			day := local.Format(time.DateOnly)
			if got[day] == nil {
				got[day] = map[string]float64{}
			}
			v, ok := r.Values["energy"]
			if !ok {
				v = r.Values["value"]
			}
			got[day][r.Channel] = v
		}
		mismatch = compareDays(want, got)
		if mismatch == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if mismatch != "" {
		t.Fatalf("energy_daily differs from the file: %s", mismatch)
	}
	days := make([]string, 0, len(want))
	for d := range want {
		days = append(days, d)
	}
	sort.Strings(days)
	for _, d := range days {
		t.Logf("%s mains %.1f Wh, sub1 %.1f, sub2 %.1f, sub3 %.1f, rest %.1f", d, got[d]["mains"], got[d]["sub1"], got[d]["sub2"], got[d]["sub3"], got[d]["rest"])
	}
	if resp, err := http.Get("http://" + c.httpAddr + "/metrics"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, "gridedge_collector_window_") {
				t.Log(line)
			}
		}
	}
}

// compareDays describes the first difference, or returns "".
func compareDays(want, got map[string]map[string]float64) string {
	var diffs []string
	for day, w := range want {
		for ch, wh := range w {
			g, ok := got[day][ch]
			switch {
			case !ok:
				diffs = append(diffs, fmt.Sprintf("%s %s: no result (want %.3f Wh)", day, ch, wh))
			case math.Abs(g-wh) > 1e-9*math.Abs(wh)+1e-6:
				diffs = append(diffs, fmt.Sprintf("%s %s: %.6f Wh, file gives %.6f Wh", day, ch, g, wh))
			}
		}
	}
	for day := range got {
		if want[day] == nil {
			diffs = append(diffs, fmt.Sprintf("%s: a result for a day the file does not have", day))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("and %d more", len(diffs)-5))
	}
	return strings.Join(diffs, "; ")
}
