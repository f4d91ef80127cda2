package sim

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/topic"
	"github.com/gridedge/gridedge/shared/wire"
)

// fakeNow is a settable real clock.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeNow) add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// The simulated clock catches up at its speed and then follows the wall
// clock: it never stands later than now.
func TestClockNeverPassesTheWallClock(t *testing.T) {
	wall := &fakeNow{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	start := wall.t.Add(-6 * time.Hour)
	c := NewClock(start, 3600, "boot")
	c.now = wall.now
	c.Begin()
	if c.Elapsed() != 0 || c.Live() {
		t.Fatalf("at begin: elapsed %v, live %v", c.Elapsed(), c.Live())
	}
	wall.add(time.Second) // 1 h simulated
	if got := c.Elapsed(); got != time.Hour || c.Live() {
		t.Fatalf("after 1 s at 3600×: elapsed %v, live %v", got, c.Live())
	}
	// Due at 5 h simulated: 4 more real seconds.
	if w := c.untilDue(5 * time.Hour); w != 4*time.Second {
		t.Fatalf("until 5 h: %v, want 4s", w)
	}
	for range 100 {
		wall.add(time.Second)
		if at := start.Add(c.Elapsed()); at.After(wall.now()) {
			t.Fatalf("simulated %v is after the wall clock %v", at, wall.now())
		}
	}
	// Caught up: it is the wall clock, advancing at real time.
	if !c.Live() || !start.Add(c.Elapsed()).Equal(wall.now()) {
		t.Fatalf("not live at the present: %v vs %v", start.Add(c.Elapsed()), wall.now())
	}
	// A sample due a minute from now is a real minute away.
	if w := c.untilDue(wall.now().Sub(start) + time.Minute); w != time.Minute {
		t.Fatalf("until a minute ahead: %v", w)
	}
	// A clock whose start is still ahead stands at 0 until it is reached.
	ahead := NewClock(wall.now().Add(10*time.Second), 1000, "b")
	ahead.now = wall.now
	ahead.Begin()
	wall.add(5 * time.Second)
	if ahead.Elapsed() != 0 || ahead.untilDue(0) != 5*time.Second {
		t.Fatalf("clock ahead: elapsed %v, due in %v", ahead.Elapsed(), ahead.untilDue(0))
	}
}

// checkingCollector is the test collector, also counting readings stamped
// later than the moment they arrived.
func checkingCollector(t *testing.T, url string) (*collector, func() (future int, newest time.Time)) {
	col := startCollector(t, url)
	var mu sync.Mutex
	future, newest := 0, time.Time{}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("watcher"))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(topic.Filter(topic.Data), 1, func(_ mqtt.Client, m mqtt.Message) {
		now := time.Now()
		b, err := wire.DecodeBatch(m.Payload())
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, r := range b.Readings {
			at := time.Unix(0, r.WallNs)
			if at.After(now) {
				future++
			}
			if at.After(newest) {
				newest = at
			}
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	return col, func() (int, time.Time) { mu.Lock(); defer mu.Unlock(); return future, newest }
}

// A backfilling run without end samples the past at speed, then the
// present at real time, and no reading is ever from the future.
func TestBackfillThenRealTimeNeverInTheFuture(t *testing.T) {
	broker := mqtttest.Start(t)
	_, watch := checkingCollector(t, broker.URL())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	began := time.Now()
	cfg := Config{MQTTURL: broker.URL(), Meters: 2, Buffer: BufferMemory, Backfill: 10 * time.Minute,
		Interval: time.Second, Speed: 3000, DataDir: t.TempDir(), AckTimeout: 2 * time.Second}
	// Stop once it has run live for a couple of seconds.
	cfg.ProgressInterval = 50 * time.Millisecond
	cfg.Progress = func(p Progress) {
		if _, newest := watch(); newest.After(began.Add(2 * time.Second)) {
			cancel()
		}
	}
	res, err := Run(ctx, cfg)
	if !res.Interrupted || err == nil {
		t.Fatalf("a run without end ended by itself: %v", err)
	}
	future, newest := watch()
	if future != 0 {
		t.Fatalf("%d readings were stamped after they arrived", future)
	}
	if !newest.After(began.Add(2 * time.Second)) {
		t.Fatalf("newest reading %v: the run never reached the present", newest)
	}
	// The past was backfilled: 10 minutes at 1 s, 5 readings a sample.
	if res.Generated < 2*600*5 {
		t.Fatalf("generated %d readings, want the 10 minutes backfilled", res.Generated)
	}
	if first := res.SimStart; began.Sub(first) < 10*time.Minute-time.Second || began.Sub(first) > 10*time.Minute+time.Second {
		t.Fatalf("run started at %v, want 10 minutes before %v", first, began)
	}
}

// A second run on the same data directory continues: its readings come
// after the first run's, under new sequence numbers, and the energy counter
// goes on from where it was (the bug it prevents: a second demo run
// sampled the same hours again with a counter restarted from its initial
// value, which the collector's windows took for counter resets). A given
// start at or before what was sampled, or a directory from a simulator
// that did not record it, is refused; a fresh directory gets a fresh epoch.
func TestSecondRunContinuesAndNeverOverlaps(t *testing.T) {
	broker := mqtttest.Start(t)
	col := startCollector(t, broker.URL())
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	cfg := Config{MQTTURL: broker.URL(), Meters: 2, Backfill: time.Hour, Duration: 40 * time.Minute,
		Interval: 10 * time.Second, Speed: 36000, DataDir: dir, DrainTimeout: 45 * time.Second, Logger: log}
	var truth1, truth2 syncBuffer
	cfg.Truth = &truth1
	res1, err := Run(context.Background(), cfg)
	if err != nil || res1.Generated == 0 {
		t.Fatalf("first run: %v (%d generated)", err, res1.Generated)
	}
	cfg.Truth, cfg.Duration = &truth2, 55*time.Minute
	res2, err := Run(context.Background(), cfg)
	if err != nil || res2.Generated == 0 {
		t.Fatalf("second run: %v (%d generated)", err, res2.Generated)
	}
	rows1, rows2 := parseTruth(t, truth1.Bytes()), parseTruth(t, truth2.Bytes())
	last := map[string]truthRow{} // device/channel/quantity → newest of run 1
	ids := map[readingID]bool{}
	for _, r := range rows1 {
		k := r.id.device + "/" + r.channel + "/" + r.quantity
		if p, ok := last[k]; !ok || r.time.After(p.time) {
			last[k] = r
		}
		ids[r.id] = true
	}
	firstOf2 := map[string]truthRow{}
	for _, r := range rows2 {
		k := r.id.device + "/" + r.channel + "/" + r.quantity
		if !r.time.After(last[k].time) {
			t.Fatalf("second run sampled %s at %v, not after the first run's %v", k, r.time, last[k].time)
		}
		if ids[r.id] {
			t.Fatalf("second run reused the identity %+v", r.id)
		}
		if p, ok := firstOf2[k]; !ok || r.time.Before(p.time) {
			firstOf2[k] = r
		}
	}
	for k, r := range firstOf2 {
		if !strings.HasSuffix(k, "/energy") {
			continue
		}
		// The counter continues: it grew by what the loads used across the
		// gap (at most a 10 kW house), never fell back.
		gap := r.time.Sub(last[k].time)
		if d := r.value - last[k].value; d < 0 || d > 10_000*gap.Hours() {
			t.Fatalf("%s: counter %v → %v across %v", k, last[k].value, r.value, gap)
		}
	}
	col.mu.Lock()
	stored := len(col.seen)
	col.mu.Unlock()
	if want := len(rows1) + len(rows2); stored != want {
		t.Fatalf("collector holds %d readings, the runs generated %d", stored, want)
	}

	// A given start at or before what was sampled is refused.
	given := cfg
	given.Backfill, given.Start = 0, res1.SimStart
	if _, err := Run(context.Background(), given); err == nil || !strings.Contains(err.Error(), "sampled through") {
		t.Fatalf("a start inside the sampled range: %v", err)
	}
	// A directory with an agent's state but no simulation state is refused.
	legacy := t.TempDir()
	if err := os.MkdirAll(filepath.Join(legacy, "sim-0001", "state"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(legacy, "sim-0001", "state", "seq.json"), []byte(`{"version":1,"seq_epoch":5}`), 0o600); err != nil {
		t.Fatal(err)
	}
	old := cfg
	old.DataDir, old.Truth = legacy, nil
	if _, err := Run(context.Background(), old); err == nil || !strings.Contains(err.Error(), "sampled range is unknown") {
		t.Fatalf("a directory without simulation state: %v", err)
	}
	// A fresh directory: fresh epochs, the same hours may be sampled again.
	fresh := cfg
	fresh.DataDir, fresh.Truth, fresh.Duration = t.TempDir(), nil, 5*time.Minute
	res3, err := Run(context.Background(), fresh)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range res3.Meters {
		if m.SeqEpoch == res1.Meters[i].SeqEpoch || m.SeqEpoch == 0 {
			t.Fatalf("fresh state of %s reused epoch %x", m.Device, m.SeqEpoch)
		}
	}
	if res2.Meters[0].SeqEpoch != res1.Meters[0].SeqEpoch {
		t.Fatal("the second run on the same directory changed epoch")
	}
}
