package window_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
)

func TestDefaultPipelines(t *testing.T) {
	ps := window.DefaultPipelines()
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, ","); got != "power_1m,energy_15m,energy_daily,appliance_sessions,power_snapshots" {
		t.Fatalf("default pipelines %s", got)
	}
	daily := ps[2]
	if daily.Window.Kind != window.Day || daily.TimeZone != "Europe/Paris" || daily.AllowedLateness != 72*time.Hour {
		t.Fatalf("energy_daily = %+v", daily)
	}
	if len(daily.Derived) != 1 || daily.Derived[0].Name != "rest" {
		t.Fatalf("energy_daily derived = %+v", daily.Derived)
	}
	if _, err := window.New(ps); err != nil {
		t.Fatal(err)
	}
}

func TestParseConfigErrorsNameTheLine(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown key", "pipelines:\n  - name: a\n    colour: red\n", "line 3: unknown pipeline key \"colour\""},
		{"bad duration", "pipelines:\n  - name: a\n    out_of_orderness: soon\n", "line 3: duration \"soon\""},
		{"bad kind", "pipelines:\n  - name: a\n    window:\n      kind: hourly\n", "line 4: unknown window kind \"hourly\""},
		{"bad aggregation", "pipelines:\n  - name: a\n    aggregations: [mean, median]\n", "line 3: unknown aggregation \"median\""},
		{"bad expr", "pipelines:\n  - name: a\n    derived:\n      - name: rest\n        expr: mains.energy - - sub1.energy\n", "line 5: expression \"mains.energy - - sub1.energy\": position 16"},
		{"invalid pipeline", "pipelines:\n  - name: a\n    inputs: [{channel: x}]\n    window: {kind: tumbling}\n    aggregations: [mean]\n", "line 2: pipeline a: tumbling window needs size > 0"},
		{"duplicate", "pipelines:\n  - name: a\n    inputs: [{channel: x}]\n    window: {kind: day}\n    aggregations: [mean]\n  - name: a\n    inputs: [{channel: x}]\n    window: {kind: day}\n    aggregations: [mean]\n", "line 6: pipeline a already defined at line 2"},
		{"too many sliding windows", "pipelines:\n  - name: a\n    inputs: [{channel: x}]\n    window: {kind: sliding, size: 1h, slide: 1ms}\n    aggregations: [mean]\n", "line 2: pipeline a: sliding window puts each reading in 3600000 windows"},
		{"bad zone", "pipelines:\n  - name: a\n    time_zone: Mars/Olympus\n", "line 3: time zone \"Mars/Olympus\""},
		{"not yaml", "pipelines: [\n", "window config: yaml"},
		{"empty", "", "empty document"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := window.ParseConfig([]byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestParseConfigFull(t *testing.T) {
	ps, err := window.ParseConfig([]byte(`
time_zone: UTC
pipelines:
  - name: snap
    inputs: [{device: "home-*", channel: mains, quantity: active_power}]
    window: {kind: sliding, size: 15s, slide: 1s}
    aggregations: [readings, {name: avg, func: mean}]
  - name: appliance_sessions
    inputs: [{quantity: "*"}]
    window: {kind: session, gap: 5s, min_duration: 30s}
    aggregations: [count, readings]
    join: [mains, kettle]
    time_zone: Europe/Paris
`))
	if err != nil {
		t.Fatal(err)
	}
	if ps[0].Window.Slide != time.Second || ps[0].Aggregations[1] != (window.Aggregation{Name: "avg", Func: window.Mean}) || ps[0].TimeZone != "UTC" {
		t.Fatalf("snap = %+v", ps[0])
	}
	if ps[1].Window.MinDuration != 30*time.Second || len(ps[1].Join) != 2 || ps[1].TimeZone != "Europe/Paris" {
		t.Fatalf("sessions = %+v", ps[1])
	}
}

func TestParseExpr(t *testing.T) {
	x, err := window.ParseExpr("mains.energy - sub1.energy-sub2.energy + 2.5e1 - 1")
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]float64{"mains": 100, "sub1": 10, "sub2": 5}
	got, ok := x.Eval(func(ch, agg string) (float64, bool) {
		v, ok := vals[ch]
		return v, ok && agg == "energy"
	})
	if !ok || got != 100-10-5+25-1 {
		t.Fatalf("eval = %v %v", got, ok)
	}
	if _, ok := x.Eval(func(string, string) (float64, bool) { return 0, false }); ok {
		t.Fatal("missing input must leave the value undefined")
	}
	neg, err := window.ParseExpr("-a.x")
	if err != nil || neg.Terms[0].Sign != -1 {
		t.Fatalf("unary minus: %+v %v", neg, err)
	}
	for src, pos := range map[string]string{
		"":              "position 1: empty expression",
		"a.x +":         "position 6: expression ends with an operator",
		"a.x b.y":       "position 5: expected + or -",
		"mains - * b.y": "position 1: identifier \"mains\"",
		"a.x - (b.y)":   "position 7: unexpected character '('",
		"a.x + 1.2.3":   "position 7: bad number",
		"a.x ++ b.y":    "position 6: unexpected '+'",
		"energy. - a.b": "position 1: identifier \"energy.\"",
	} {
		if _, err := window.ParseExpr(src); err == nil || !strings.Contains(err.Error(), pos) {
			t.Errorf("ParseExpr(%q) = %v, want %q", src, err, pos)
		}
	}
}
