package window_test

import (
	"math"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
)

func TestCalendarSpanAcrossDST(t *testing.T) {
	loc := paris()
	at := func(y int, m time.Month, d, h int) int64 { return time.Date(y, m, d, h, 0, 0, 0, loc).UnixNano() }
	cases := []struct {
		kind   window.Kind
		t      int64
		start  int64
		length time.Duration
		desc   string
	}{
		{window.Day, at(2026, 3, 29, 12), at(2026, 3, 29, 0), 23 * time.Hour, "spring forward"},
		{window.Day, at(2026, 3, 29, 1), at(2026, 3, 29, 0), 23 * time.Hour, "before the jump"},
		{window.Day, at(2026, 10, 25, 12), at(2026, 10, 25, 0), 25 * time.Hour, "fall back"},
		{window.Day, time.Date(2026, 10, 25, 2, 30, 0, 0, time.FixedZone("CET", 3600)).UnixNano(), at(2026, 10, 25, 0), 25 * time.Hour, "second 02:30"},
		{window.Day, at(2026, 3, 28, 23), at(2026, 3, 28, 0), 24 * time.Hour, "ordinary day"},
		{window.Week, at(2026, 3, 29, 12), at(2026, 3, 23, 0), 7*24*time.Hour - time.Hour, "ISO week holding the jump"},
		{window.Month, at(2026, 10, 31, 23), at(2026, 10, 1, 0), 31*24*time.Hour + time.Hour, "October"},
	}
	for _, c := range cases {
		s, e := window.CalendarSpan(c.kind, c.t, loc)
		if s != c.start || time.Duration(e-s) != c.length {
			t.Errorf("%s: %v window [%v, %v) (%v), want start %v, length %v", c.desc, c.kind,
				time.Unix(0, s).In(loc), time.Unix(0, e).In(loc), time.Duration(e-s), time.Unix(0, c.start).In(loc), c.length)
		}
	}
}

// A constant 1 kW load sampled every 15 minutes integrates to 23, 24 and
// 25 kWh on the short, ordinary and long days of Europe/Paris.
func TestDailyEnergyAcrossDST(t *testing.T) {
	pipes := []window.Pipeline{{
		Name: "daily", Inputs: []window.Selector{{Channel: "mains"}},
		Window:       window.WindowSpec{Kind: window.Day},
		Aggregations: []window.Aggregation{{Name: "energy", Func: window.Energy}, {Name: "count", Func: window.Count}},
		MaxGap:       15 * time.Minute, TimeZone: "UTC",
	}}
	eng, err := window.New(pipes)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.SetTimeZone("home", "Europe/Paris"); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{}
	for _, span := range []struct {
		from, to time.Time
	}{
		{time.Date(2026, 3, 27, 0, 0, 0, 0, paris()), time.Date(2026, 3, 31, 0, 0, 0, 0, paris())},
		{time.Date(2026, 10, 24, 0, 0, 0, 0, paris()), time.Date(2026, 10, 27, 0, 0, 0, 0, paris())},
	} {
		var seq uint64
		for tm := span.from; tm.Before(span.to); tm = tm.Add(15 * time.Minute) {
			seq++
			eng.Apply(&window.Reading{Device: "home", Channel: "mains", Quantity: power, TimeNs: tm.UnixNano(), Value: 1000, Quality: synced, Seq: seq})
		}
	}
	want["2026-03-28"], want["2026-03-29"], want["2026-03-30"] = 24000, 23000, 24000
	want["2026-10-25"] = 25000
	got := map[string]float64{}
	for _, r := range eng.TakeOutput().Results {
		day := time.Unix(0, r.Start).In(paris()).Format(time.DateOnly)
		e, _ := r.Value("energy")
		got[day] = e
		if r.Coverage != 1 {
			t.Errorf("%s: coverage %v with a reading every slot", day, r.Coverage)
		}
	}
	for day, w := range want {
		if math.Abs(got[day]-w) > 1e-6 {
			t.Errorf("%s: %v Wh, want %v", day, got[day], w)
		}
	}
}
