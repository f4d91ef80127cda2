package window_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

// Building sensors report every 15 minutes: temperatures (averaged per
// day), HVAC and appliance energy per interval (summed per day) and a
// cumulative meter (daily difference). Some readings of day 5 arrive two
// days late and must update their day; some of day 3 arrive ten days late
// and must land in the late stream. Days are 1-day windows in the site's
// time zone with an allowed lateness of 3 days.
func TestBuildingSensorScenario(t *testing.T) {
	const yamlCfg = `
time_zone: Europe/Paris
pipelines:
  - name: temperature_daily
    inputs: [{quantity: temperature}]
    window: {kind: day}
    aggregations: [mean, min, max, count]
    out_of_orderness: 1h
    allowed_lateness: 3d
    max_gap: 15m
  - name: energy_daily
    inputs: [{channel: "hvac"}, {channel: "appliances"}]
    window: {kind: day}
    aggregations: [sum, count]
    out_of_orderness: 1h
    allowed_lateness: 3d
    max_gap: 15m
  - name: meter_daily
    inputs: [{quantity: energy}]
    window: {kind: day}
    aggregations: [{name: wh, func: energy_counter}, count]
    out_of_orderness: 1h
    allowed_lateness: 3d
    max_gap: 15m
`
	pipes, err := window.ParseConfig([]byte(yamlCfg))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := window.New(pipes)
	if err != nil {
		t.Fatal(err)
	}
	loc := paris()
	day0 := time.Date(2026, 3, 20, 0, 0, 0, 0, loc) // spans the 23 h day of 29 March
	const days = 20
	rng := rand.New(rand.NewPCG(7, 7))
	type series struct {
		channel string
		q       wire.Quantity
	}
	sensors := []series{
		{"office_temp", wire.Quantity_QUANTITY_TEMPERATURE},
		{"hall_temp", wire.Quantity_QUANTITY_TEMPERATURE},
		{"hvac", wire.Quantity_QUANTITY_GENERIC},
		{"appliances", wire.Quantity_QUANTITY_GENERIC},
		{"meter", wire.Quantity_QUANTITY_ENERGY},
	}
	dayOf := func(ns int64) int {
		for d := 0; ; d++ {
			if ns < day0.AddDate(0, 0, d+1).UnixNano() {
				return d
			}
		}
	}
	var onTime, twoDaysLate, tenDaysLate []window.Reading
	// expected[pipeline/device/channel][day] accumulates what the direct
	// computation needs.
	type acc struct{ sum, n, first, last float64 }
	expected := map[string]map[int]*acc{}
	meter := map[string]float64{}
	var seq uint64
	for _, dev := range []string{"bldg-a", "bldg-b"} {
		meter[dev] = 1e6
		for tm := day0; tm.Before(day0.AddDate(0, 0, days)); tm = tm.Add(15 * time.Minute) {
			d := dayOf(tm.UnixNano())
			for _, s := range sensors {
				var v float64
				switch s.q {
				case wire.Quantity_QUANTITY_TEMPERATURE:
					v = float64(160+rng.IntN(80)) / 8
				case wire.Quantity_QUANTITY_ENERGY:
					meter[dev] += float64(rng.IntN(400))
					v = meter[dev]
				default:
					v = float64(rng.IntN(2000)) / 4
				}
				seq++
				r := window.Reading{Device: dev, Channel: s.channel, Quantity: s.q, TimeNs: tm.UnixNano(), Value: v, Quality: synced, SeqEpoch: 1, Seq: seq}
				switch {
				case d == 5 && tm.Hour() >= 12 && tm.Hour() < 14:
					twoDaysLate = append(twoDaysLate, r)
				case d == 3 && tm.Hour() == 8:
					tenDaysLate = append(tenDaysLate, r)
					continue // never counted
				default:
					onTime = append(onTime, r)
				}
				k := dev + "/" + s.channel
				if expected[k] == nil {
					expected[k] = map[int]*acc{}
				}
				a := expected[k][d]
				if a == nil {
					a = &acc{first: v}
					expected[k][d] = a
				}
				a.sum += v
				a.n++
				a.last = v
			}
		}
	}
	// Both buildings report together, in time order.
	slices.SortStableFunc(onTime, func(a, b window.Reading) int { return cmp.Compare(a.TimeNs, b.TimeNs) })
	var results []window.Result
	var late []window.LateReading
	released2, released10 := false, false
	for i := range onTime {
		r := onTime[i]
		d := dayOf(r.TimeNs)
		if d == 7 && !released2 {
			released2 = true
			for j := range twoDaysLate {
				eng.Apply(&twoDaysLate[j])
			}
		}
		if d == 13 && !released10 {
			released10 = true
			for j := range tenDaysLate {
				eng.Apply(&tenDaysLate[j])
			}
		}
		eng.Apply(&r)
		out := eng.TakeOutput()
		results = append(results, out.Results...)
		late = append(late, out.Late...)
	}
	if len(late) != len(tenDaysLate) || eng.Stats().Late != uint64(len(tenDaysLate)) {
		t.Fatalf("late stream has %d readings (counted %d), want %d", len(late), eng.Stats().Late, len(tenDaysLate))
	}
	d3s, d3e := day0.AddDate(0, 0, 3).UnixNano(), day0.AddDate(0, 0, 4).UnixNano()
	for _, l := range late {
		if len(l.Windows) != 1 || l.Windows[0] != (window.Span{Start: d3s, End: d3e}) {
			t.Fatalf("late reading %+v: windows %v, want day 3 [%d, %d)", l.Reading, l.Windows, d3s, d3e)
		}
	}
	final := map[string]window.Result{}
	for _, r := range results {
		if r.Provisional {
			t.Fatalf("provisional result without idle timeout: %+v", r)
		}
		final[fmt.Sprintf("%s/%s/%d", r.Key.Device, r.Key.Channel, dayOf(r.Start))] = r
	}
	for k, perDay := range expected {
		for d, a := range perDay {
			if d >= days-1 {
				continue // the last day has not fired: no later reading
			}
			r, ok := final[fmt.Sprintf("%s/%d", k, d)]
			if !ok {
				t.Fatalf("%s day %d: no result", k, d)
			}
			if r.Count != int64(a.n) {
				t.Errorf("%s day %d: count %d, want %v", k, d, r.Count, a.n)
			}
			switch r.Pipeline {
			case "temperature_daily":
				if m, _ := r.Value("mean"); m != a.sum/a.n {
					t.Errorf("%s day %d: mean %v, want %v", k, d, m, a.sum/a.n)
				}
			case "energy_daily":
				if s, _ := r.Value("sum"); s != a.sum {
					t.Errorf("%s day %d: sum %v, want %v", k, d, s, a.sum)
				}
			case "meter_daily":
				// A day's energy runs from the previous day's last reading
				// (the increment across midnight belongs to the later day).
				from := a.first
				if d > 0 {
					from = perDay[d-1].last
				}
				if wh, _ := r.Value("wh"); wh != a.last-from {
					t.Errorf("%s day %d: %v Wh, want %v", k, d, wh, a.last-from)
				}
			}
			wantRev := uint32(1)
			if d == 5 {
				wantRev = 2 // re-fired once by the burst two days late
			}
			if r.Revision != wantRev {
				t.Errorf("%s day %d: revision %d, want %d", k, d, r.Revision, wantRev)
			}
			wantCov := 1.0
			if d == 3 {
				wantCov = float64(r.End-r.Start-int64(time.Hour)) / float64(r.End-r.Start)
			}
			if r.Coverage != wantCov {
				t.Errorf("%s day %d: coverage %v, want %v", k, d, r.Coverage, wantCov)
			}
		}
	}
	if time.Duration(final["bldg-a/hvac/9"].End-final["bldg-a/hvac/9"].Start) != 23*time.Hour {
		t.Errorf("29 March is not 23 h long in the results")
	}
}
