package window_test

import (
	"slices"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

var appliances = []string{"kettle", "oven", "washer", "fridge", "water_heater"}

// The shipped dataset pipelines take only devices with state channels, and
// such a device's earlier series from its first state reading on.
func TestDatasetPipelinesOnlyForDevicesWithStates(t *testing.T) {
	eng := mustEngine(t, window.DefaultPipelines()...)
	var seq uint64
	apply := func(dev, ch string, q wire.Quantity, s float64, v float64) {
		seq++
		eng.Apply(&window.Reading{Device: dev, Channel: ch, Quantity: q, TimeNs: sec(s), Value: v, Quality: synced, SeqEpoch: 1, Seq: seq})
	}
	for s := range 120 {
		apply("plain", "mains", power, float64(s), 100)
		apply("home", "mains", power, float64(s), 100)
		if s >= 10 {
			on := 0.0
			if s < 60 {
				on = 1
			}
			for _, a := range appliances {
				apply("home", a, wire.Quantity_QUANTITY_STATE, float64(s), on)
			}
		}
	}
	perDev := map[string]map[string]int{}
	var firstSnapshot int64 = -1
	for _, r := range eng.TakeOutput().Results {
		if perDev[r.Key.Device] == nil {
			perDev[r.Key.Device] = map[string]int{}
		}
		perDev[r.Key.Device][r.Pipeline]++
		if r.Pipeline == "power_snapshots" && (firstSnapshot < 0 || r.Start < firstSnapshot) {
			firstSnapshot = r.Start
		}
	}
	if n := perDev["plain"]["appliance_sessions"] + perDev["plain"]["power_snapshots"]; n != 0 {
		t.Fatalf("device without states has %d dataset results", n)
	}
	if perDev["home"]["appliance_sessions"] != 1 || perDev["home"]["power_snapshots"] == 0 {
		t.Fatalf("device with states: %v", perDev["home"])
	}
	// Power enters the snapshots after the first state reading (10 s,
	// applied after that second's power reading): the first power reading
	// taken is at 11 s, and the first window holding it starts 14 s before.
	if want := sec(11 - 14); firstSnapshot != want {
		t.Fatalf("first snapshot starts at %d, want %d", firstSnapshot, want)
	}
}

// Sessions of "any appliance on" over the six-channel join, and their
// merged share: state readings in seconds without mains power, and a
// second reading of a channel within one second, are not merged.
func TestApplianceSessionsMergedShare(t *testing.T) {
	eng := mustEngine(t, window.DefaultPipelines()...)
	var seq uint64
	apply := func(ch string, q wire.Quantity, s float64, v float64) {
		seq++
		eng.Apply(&window.Reading{Device: "home", Channel: ch, Quantity: q, TimeNs: sec(s), Value: v, Quality: synced, SeqEpoch: 1, Seq: seq})
	}
	for s := range 150 {
		if s < 41 || s > 43 { // three seconds without mains power
			apply("mains", power, float64(s), float64(100+s))
		}
		for _, a := range appliances {
			on := 0.0
			if a == "kettle" && s >= 20 && s < 80 || a == "oven" && s >= 100 && s < 110 {
				on = 1 // the oven's 10 s session is too short to keep
			}
			apply(a, wire.Quantity_QUANTITY_STATE, float64(s), on)
		}
		if s == 50 {
			apply("fridge", wire.Quantity_QUANTITY_STATE, 50.5, 0) // a second fridge reading in second 50
		}
	}
	var sessions []window.Result
	for _, r := range eng.TakeOutput().Results {
		if r.Pipeline == "appliance_sessions" && !r.Provisional {
			sessions = append(sessions, r)
		}
	}
	if len(sessions) != 1 {
		t.Fatalf("%d sessions %+v, want 1", len(sessions), sessions)
	}
	x := sessions[0]
	if x.Key.Channel != "mains+kettle+oven+washer+fridge+water_heater" || x.Start != sec(20) {
		t.Fatalf("session %+v", x)
	}
	if len(x.Rows) != 57 { // seconds 20..79 but 41..43
		t.Fatalf("%d rows, want 57", len(x.Rows))
	}
	for i, row := range x.Rows {
		if len(row.Values) != 6 || row.Values[1] != 1 {
			t.Fatalf("row %d: %+v", i, row)
		}
		if i > 0 && row.TimeNs <= x.Rows[i-1].TimeNs {
			t.Fatalf("row %d out of time order", i)
		}
	}
	// 60 seconds × 5 states + the extra fridge reading; merged: 57 × 5.
	readings, _ := x.Value("state_readings")
	merged, _ := x.Value("state_merged")
	if readings != 301 || merged != 285 {
		t.Fatalf("state readings %v merged %v, want 301 and 285", readings, merged)
	}
}

func TestActiveAnyValidation(t *testing.T) {
	base := window.Pipeline{
		Name: "s", Inputs: []window.Selector{{}}, Window: window.WindowSpec{Kind: window.Session, Gap: 5e9},
		Aggregations: []window.Aggregation{{Name: "n", Func: window.StateMerged}}, Join: []string{"a", "b"},
	}
	for name, mut := range map[string]func(p *window.Pipeline){
		"active_any not joined": func(p *window.Pipeline) { p.ActiveAny = []string{"c"} },
		"both":                  func(p *window.Pipeline) { p.Active, p.ActiveAny = "a", []string{"b"} },
		"state_merged unjoined": func(p *window.Pipeline) { p.Join = nil },
		"joined twice":          func(p *window.Pipeline) { p.Join = []string{"a", "a"} },
		"bad requires":          func(p *window.Pipeline) { p.Requires = []window.Selector{{Channel: "["}} },
	} {
		p := base
		p.Join = slices.Clone(base.Join)
		mut(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
}

// A device that met Requires after its first series restores from its
// delta with the same pipelines and series, and goes on identically.
func TestRequiresSurvivesDeltaRestore(t *testing.T) {
	pipes := window.DefaultPipelines()
	run := func(restoreAt int) map[winID]window.Result {
		eng := mustEngine(t, pipes...)
		got := map[winID]window.Result{}
		var seq uint64
		take := func() {
			for _, r := range eng.TakeOutput().Results {
				got[winID{r.Pipeline, r.Key, r.Start}] = r
			}
		}
		for s := range 100 {
			if s == restoreAt {
				take()
				d, err := eng.TakeDelta()
				if err != nil {
					t.Fatal(err)
				}
				var states [][]byte
				for _, ds := range d.Devices {
					states = append(states, ds.State)
				}
				if eng, err = window.RestoreDelta(pipes, d.Header, states); err != nil {
					t.Fatal(err)
				}
			}
			seq++
			eng.Apply(&window.Reading{Device: "home", Channel: "mains", Quantity: power, TimeNs: sec(float64(s)), Value: float64(s), Quality: synced, SeqEpoch: 1, Seq: seq})
			if s >= 5 {
				for _, a := range appliances {
					seq++
					on := 0.0
					if s > 20 && s < 70 {
						on = 1
					}
					eng.Apply(&window.Reading{Device: "home", Channel: a, Quantity: wire.Quantity_QUANTITY_STATE, TimeNs: sec(float64(s)), Value: on, Quality: synced, SeqEpoch: 1, Seq: seq})
				}
			}
		}
		take()
		return got
	}
	want := run(-1)
	got := run(40)
	if len(got) != len(want) {
		t.Fatalf("%d windows after restore, want %d", len(got), len(want))
	}
	for id, w := range want {
		if g, ok := got[id]; !ok || diffResult(g, w) != "" || g.Revision != w.Revision || len(g.Rows) != len(w.Rows) {
			t.Fatalf("%v: got %+v, want %+v", id, g, w)
		}
	}
}

// An appliance that never turns off: the shipped max_duration (1 h) cuts
// its activity into sessions of at most an hour, and the device's state —
// the readings its session buffer holds — stays within an hour and the
// lateness of readings however long the stream runs.
func TestSessionMaxDurationBoundsItsBuffer(t *testing.T) {
	pipes := window.DefaultPipelines()
	var sess window.Pipeline
	for _, p := range pipes {
		if p.Name == "appliance_sessions" {
			sess = p
		}
	}
	if sess.Window.MaxDuration != time.Hour {
		t.Fatalf("appliance_sessions max_duration %v, want 1h", sess.Window.MaxDuration)
	}
	eng := mustEngine(t, sess)
	var seq uint64
	var sessions []window.Result
	stateSize := func() int {
		d, err := eng.TakeDelta()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ds := range d.Devices {
			n += len(ds.State)
		}
		return n
	}
	for s := range 4 * 3600 {
		seq++
		eng.Apply(&window.Reading{Device: "home", Channel: "mains", Quantity: power, TimeNs: sec(float64(s)), Value: 2000, Quality: synced, SeqEpoch: 1, Seq: seq})
		for _, a := range appliances {
			seq++
			on := 0.0
			if a == "water_heater" {
				on = 1 // stuck on
			}
			eng.Apply(&window.Reading{Device: "home", Channel: a, Quantity: wire.Quantity_QUANTITY_STATE, TimeNs: sec(float64(s)), Value: on, Quality: synced, SeqEpoch: 1, Seq: seq})
		}
		for _, r := range eng.TakeOutput().Results {
			if !r.Provisional && !r.Retracted {
				sessions = append(sessions, r)
			}
		}
	}
	size := stateSize()
	// At most max_duration + lateness + 2 gaps + a minute of readings, 6
	// channels at 1 Hz, 40 B each (a point encodes in fewer); the whole
	// 4 h would be 86,400 readings.
	bound := int((time.Hour + 10*time.Minute + 11*time.Second + time.Minute).Seconds()) * 6 * 40
	if size > bound {
		t.Fatalf("device state %d B after 4 h of an appliance stuck on, bound %d B", size, bound)
	}
	if len(sessions) != 3 {
		t.Fatalf("%d sessions closed in 4 h, want 3 of an hour (the fourth is open)", len(sessions))
	}
	for _, x := range sessions {
		if span := x.Rows[len(x.Rows)-1].TimeNs - x.Start; span >= int64(time.Hour) || len(x.Rows) != 3600 {
			t.Fatalf("session of %d rows spanning %v", len(x.Rows), time.Duration(span))
		}
	}
	t.Logf("device state after 4 h: %d B (bound %d B)", size, bound)
}
