package analytics_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/analytics"
)

// episode is one injected anomaly: over [from, to) (local time) the
// channels' 15-minute energies are changed by apply.
type episode struct {
	kind     string // left_on, stuck_zero, spike
	channels []string
	from, to time.Time
}

// detectorKind is the detector kind that answers an injected kind.
var detectorKind = map[string]analytics.Kind{
	"left_on": analytics.KindHigh, "stuck_zero": analytics.KindLow, "spike": analytics.KindSpike,
}

// injections are the evaluation's anomalies, all on days the detector has
// at least a day of history for (Mon 18 to Wed 20 December 2006).
func injections(t testing.TB) map[string][]episode {
	loc := paris(t)
	at := func(day, hour, min int) time.Time { return time.Date(2006, 12, day, hour, min, 0, 0, loc) }
	ep := func(kind string, chans []string, day, hour, min int, d time.Duration) episode {
		f := at(day, hour, min)
		return episode{kind: kind, channels: chans, from: f, to: f.Add(d)}
	}
	onK, onL := []string{"sub1", "mains"}, []string{"sub2", "mains"}
	return map[string][]episode{
		// 2 kW appliance left on for 3 hours: its sub-meter and the main meter.
		"left_on": {ep("left_on", onK, 18, 3, 0, 3*time.Hour), ep("left_on", onL, 18, 13, 0, 3*time.Hour),
			ep("left_on", onK, 19, 9, 0, 3*time.Hour), ep("left_on", onL, 19, 21, 0, 3*time.Hour)},
		// The laundry sub-meter (a fridge on it) reads 0 for 3 hours.
		"stuck_zero": {ep("stuck_zero", []string{"sub2"}, 18, 6, 0, 3*time.Hour), ep("stuck_zero", []string{"sub2"}, 18, 17, 0, 3*time.Hour),
			ep("stuck_zero", []string{"sub2"}, 19, 2, 0, 3*time.Hour), ep("stuck_zero", []string{"sub2"}, 19, 14, 0, 3*time.Hour)},
		// spikeW for one quarter hour on the main meter.
		"spike": {ep("spike", []string{"mains"}, 18, 4, 15, res), ep("spike", []string{"mains"}, 18, 10, 30, res),
			ep("spike", []string{"mains"}, 18, 19, 45, res), ep("spike", []string{"mains"}, 19, 1, 0, res),
			ep("spike", []string{"mains"}, 19, 12, 15, res), ep("spike", []string{"mains"}, 19, 18, 30, res),
			ep("spike", []string{"mains"}, 20, 2, 0, res)},
	}
}

// inject applies episodes to a copy of src.
func inject(src map[string][]win, eps []episode) map[string][]win {
	out := clone(src)
	for _, e := range eps {
		for _, ch := range e.channels {
			for i, w := range out[ch] {
				if w.start.Before(e.from) || !w.start.Before(e.to) {
					continue
				}
				switch e.kind {
				case "left_on":
					out[ch][i].wh += 2000 * res.Hours()
				case "stuck_zero":
					out[ch][i].wh = 0
				case "spike":
					out[ch][i].wh += spikeW * res.Hours()
				}
			}
		}
	}
	return out
}

// event is a run of consecutive flagged windows of one channel and kind.
type event struct {
	channel    string
	kind       analytics.Kind
	start, end time.Time
}

func flaggedEvents(h *replay) []event {
	var out []event
	for _, ch := range []string{"mains", "sub1", "sub2", "sub3"} {
		for _, r := range h.results("anomaly_15m", ch) {
			if r.Values["anomaly"] != 1 {
				continue
			}
			k := analytics.Kind(r.Values["kind"])
			if n := len(out); n > 0 && out[n-1].channel == ch && out[n-1].kind == k && out[n-1].end.Equal(r.Start) {
				out[n-1].end = r.End
				continue
			}
			out = append(out, event{ch, k, r.Start, r.End})
		}
	}
	return out
}

func (e event) overlaps(ep episode) bool {
	return slices.Contains(ep.channels, e.channel) && e.start.Before(ep.to) && ep.from.Before(e.end)
}

// evalReport is the evaluation's outcome.
type evalReport struct {
	kinds       []string
	injected    map[string]int
	detected    map[string]int
	flagged     map[string]int // events of the answering detector kind
	trueFlagged map[string]int
	missed      map[string][]episode
	clean       []event // flags on the untouched copy
	cleanDays   float64
	perDay      map[string]int // local day → false alarms (untouched copy)
	forecast    []forecastRow
}

type forecastRow struct {
	channel, horizon               string
	n                              int
	mae, naiveMAE, mape, naiveMAPE float64
	mapeN                          int
}

// replayEnd is the end of the household file's last complete window.
func replayEnd(src map[string][]win) time.Time {
	ws := src["mains"]
	return ws[len(ws)-1].start.Add(res)
}

// evaluate runs the untouched copy and one copy per injected kind.
func evaluate(t testing.TB) evalReport {
	src := householdWindows(t)
	start, end := src["mains"][0].start, replayEnd(src)
	loc := paris(t)
	rep := evalReport{injected: map[string]int{}, detected: map[string]int{}, flagged: map[string]int{},
		trueFlagged: map[string]int{}, missed: map[string][]episode{}, perDay: map[string]int{}}

	// Untouched copy: false alarms, and the day-ahead forecasts read at
	// each local midnight.
	dayAhead := map[string]map[int64]float64{}
	h := newReplay(t, src, start)
	for day := time.Date(2006, 12, 18, 0, 0, 0, 0, loc); day.Before(end); day = day.AddDate(0, 0, 1) {
		h.runUntil(day)
		for _, ch := range sim4 {
			if dayAhead[ch] == nil {
				dayAhead[ch] = map[int64]float64{}
			}
			for _, r := range h.results("forecast_15m", ch) {
				if !r.Start.Before(day) && r.Start.Before(day.AddDate(0, 0, 1)) {
					dayAhead[ch][r.Start.UnixNano()] = r.Values["expected"]
				}
			}
		}
	}
	h.runUntil(end.Add(10 * time.Minute))
	rep.clean = flaggedEvents(h)
	for _, e := range rep.clean {
		rep.perDay[e.start.In(loc).Format("Mon 02 Jan")]++
	}
	anom := h.results("anomaly_15m", "mains")
	rep.cleanDays = anom[len(anom)-1].End.Sub(anom[0].Start).Hours() / 24
	latest := map[string]map[int64]float64{}
	for _, ch := range sim4 {
		latest[ch] = map[int64]float64{}
		for _, r := range h.results("forecast_15m", ch) {
			latest[ch][r.Start.UnixNano()] = r.Values["expected"]
		}
	}
	heldFrom := time.Date(2006, 12, 18, 0, 0, 0, 0, loc)
	for _, ch := range sim4 {
		actual := map[int64]float64{}
		for _, w := range src[ch] {
			actual[w.start.UnixNano()] = w.wh
		}
		for _, hz := range []struct {
			name string
			fc   map[int64]float64
		}{{"day-ahead (00:00)", dayAhead[ch]}, {"latest (≤10 min before)", latest[ch]}} {
			row := forecastRow{channel: ch, horizon: hz.name}
			var ae, ne, pe, npe []float64
			for _, w := range src[ch] {
				f, ok := hz.fc[w.start.UnixNano()]
				y, ok2 := actual[w.start.Add(-24*time.Hour).UnixNano()]
				if !ok || !ok2 || w.start.Before(heldFrom) {
					continue
				}
				ae, ne = append(ae, math.Abs(w.wh-f)), append(ne, math.Abs(w.wh-y))
				if w.wh != 0 {
					pe, npe = append(pe, 100*math.Abs(w.wh-f)/math.Abs(w.wh)), append(npe, 100*math.Abs(w.wh-y)/math.Abs(w.wh))
				}
			}
			row.n, row.mae, row.naiveMAE, row.mape, row.naiveMAPE, row.mapeN = len(ae), mean(ae), mean(ne), mean(pe), mean(npe), len(pe)
			rep.forecast = append(rep.forecast, row)
		}
	}

	// One copy per injected episode (independent trials), stepped hourly:
	// the flags do not depend on the step, only the forecasts' freshness.
	for _, kind := range []string{"left_on", "stuck_zero", "spike"} {
		rep.kinds = append(rep.kinds, kind)
		for _, ep := range injections(t)[kind] {
			h := newReplay(t, inject(src, []episode{ep}), start)
			h.runEvery(end.Add(time.Hour), time.Hour)
			evs := flaggedEvents(h)
			rep.injected[kind]++
			if slices.ContainsFunc(evs, func(e event) bool { return e.overlaps(ep) }) {
				rep.detected[kind]++
			} else {
				rep.missed[kind] = append(rep.missed[kind], ep)
			}
			for _, e := range evs {
				if e.kind != detectorKind[kind] {
					continue
				}
				rep.flagged[kind]++
				if e.overlaps(ep) {
					rep.trueFlagged[kind]++
				}
			}
		}
	}
	return rep
}

// spikeW is the injected spike: 8 kW for a quarter hour (+2 kWh), above
// anything the household draws in a quarter hour (6.6 kW at most).
const spikeW = 8000

var sim4 = []string{"mains", "sub1", "sub2", "sub3"}

func (r evalReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| injected kind | episodes | detected | recall | flagged (detector kind) | true | precision |\n|---|---|---|---|---|---|---|\n")
	for _, k := range r.kinds {
		fmt.Fprintf(&b, "| %s | %d | %d | %.0f %% | %d | %d | %s |\n", k, r.injected[k], r.detected[k],
			100*float64(r.detected[k])/float64(r.injected[k]), r.flagged[k], r.trueFlagged[k], pct(r.trueFlagged[k], r.flagged[k]))
	}
	fmt.Fprintf(&b, "\nuntouched copy: %d false alarms over %.2f scored days = %.2f per day; by local day: %v\n",
		len(r.clean), r.cleanDays, float64(len(r.clean))/r.cleanDays, r.perDay)
	for _, e := range r.clean {
		fmt.Fprintf(&b, "  false alarm: %s %s %s–%s\n", e.channel, e.kind, e.start.Format(time.RFC3339), e.end.Format("15:04"))
	}
	for k, eps := range r.missed {
		for _, ep := range eps {
			fmt.Fprintf(&b, "  missed %s: %v %s\n", k, ep.channels, ep.from.Format(time.RFC3339))
		}
	}
	fmt.Fprintf(&b, "\n| channel | forecast | windows | MAE Wh | naive MAE Wh | MAPE %% | naive MAPE %% | MAPE windows |\n|---|---|---|---|---|---|---|---|\n")
	for _, f := range r.forecast {
		fmt.Fprintf(&b, "| %s | %s | %d | %.1f | %.1f | %.0f | %.0f | %d |\n", f.channel, f.horizon, f.n, f.mae, f.naiveMAE, f.mape, f.naiveMAPE, f.mapeN)
	}
	return b.String()
}

func pct(a, b int) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f %%", 100*float64(a)/float64(b))
}

// BenchmarkHouseholdEvaluation runs the evaluation of docs/analytics.md
// and prints its tables:
//
//	go test -run '^$' -bench HouseholdEvaluation -benchtime 1x -v ./cloud/analytics/
func BenchmarkHouseholdEvaluation(b *testing.B) {
	for range b.N {
		rep := evaluate(b)
		b.Logf("\n%s", rep)
		for _, k := range rep.kinds {
			b.ReportMetric(float64(rep.detected[k])/float64(rep.injected[k]), "recall_"+k)
		}
		b.ReportMetric(float64(len(rep.clean))/rep.cleanDays, "false_alarms/day")
	}
}
