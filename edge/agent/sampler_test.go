package agent

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridedge/gridedge/edge/clock"
	"github.com/gridedge/gridedge/edge/config"
	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/poll"
	"github.com/gridedge/gridedge/shared/wire"
)

// gateSensor blocks in Sense until its gate is closed (or ctx ends).
type gateSensor struct{ gate chan struct{} }

func (g gateSensor) Sense(ctx context.Context) ([]sensor.Value, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return []sensor.Value{{Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: 1}}, nil
}
func (gateSensor) String() string { return "gate" }
func (gateSensor) Close() error   { return nil }

func groupConfig(t *testing.T, url, channels string) config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
device_id: dev-1
site: site-1
state_dir: %s
mqtt: {url: %q}
buffer: {dir: %s}
channels:
%s`, filepath.Join(dir, "state"), url, filepath.Join(dir, "buf"), channels)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Channels that share an interval share one schedule, and the readings of
// one tick reach the buffer in one write: consecutive sequence numbers,
// appended together.
func TestChannelsWithOneIntervalShareOneSchedule(t *testing.T) {
	broker := mqtttest.Start(t)
	ackAll(t, broker.URL())
	cfg := groupConfig(t, broker.URL(), `  - {name: a, driver: fake, interval: 1s, quantities: [active_power]}
  - {name: b, driver: fake, interval: 1s, quantities: [active_power]}
  - {name: c, driver: fake, interval: 10s, quantities: [active_power]}
  - {name: d, driver: fake, interval: 1s, quantities: [active_power]}
`)
	var mu sync.Mutex
	var made []string
	var seqs [][]uint64 // per append, in order
	var lastWall int64
	a, err := New(cfg, WithRegistry(registry()), WithClock(fixedClock{}),
		WithTicker(func(channels string, iv time.Duration) Ticker {
			mu.Lock()
			made = append(made, fmt.Sprintf("%s@%v", channels, iv))
			mu.Unlock()
			return &countTicker{n: 5, interval: iv}
		}),
		WithReadingHook(func(_ string, _ uint64, r *wire.Reading) {
			mu.Lock()
			defer mu.Unlock()
			if r.Channel == "c" {
				return // the 10 s schedule appends on its own
			}
			if n := len(seqs); n > 0 && seqs[n-1][len(seqs[n-1])-1]+1 == r.Seq && r.WallNs == lastWall {
				seqs[n-1] = append(seqs[n-1], r.Seq)
			} else {
				seqs = append(seqs, []uint64{r.Seq})
			}
			lastWall = r.WallNs
		}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a,b,d@1s", "c@10s"}; !slices.Equal(made, want) {
		t.Fatalf("tickers made: %v, want one per interval %v", made, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 45*time.Second)
	defer wcancel()
	if err := a.WaitDrained(wctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// 5 ticks of the 1 s schedule, one write of 3 readings each.
	var sizes []int
	for _, s := range seqs {
		sizes = append(sizes, len(s))
	}
	if want := []int{3, 3, 3, 3, 3}; !slices.Equal(sizes, want) {
		t.Fatalf("readings per tick and write: %v, want %v", sizes, want)
	}
}

// A sensor that hangs is left behind after half the interval: the other
// channels of its schedule keep sampling every tick.
func TestAHungSensorDoesNotHoldBackItsSchedule(t *testing.T) {
	broker := mqtttest.Start(t)
	ackAll(t, broker.URL())
	gate := make(chan struct{})
	reg := registry()
	reg.Register(sensor.Driver{Name: "gate", New: func(sensor.Config, sensor.Env) (sensor.Sensor, error) { return gateSensor{gate: gate}, nil }})
	cfg := groupConfig(t, broker.URL(), `  - {name: fast, driver: fake, interval: 200ms, quantities: [active_power]}
  - {name: slow, driver: gate, interval: 200ms}
`)
	var mu sync.Mutex
	count := map[string]int{}
	a, err := New(cfg, WithRegistry(reg), WithClock(fixedClock{}),
		WithTicker(func(string, time.Duration) Ticker { return &countTicker{n: 1 << 30, interval: 200 * time.Millisecond} }),
		WithReadingHook(func(_ string, _ uint64, r *wire.Reading) { mu.Lock(); count[r.Channel]++; mu.Unlock() }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// The slow sensor's Sense times out after 1 s; in that time the fast
	// channel goes round many times.
	poll.Until(t, 30*time.Second, "20 fast readings", func() bool { mu.Lock(); defer mu.Unlock(); return count["fast"] >= 20 })
	close(gate)
	poll.Until(t, 30*time.Second, "a slow reading once released", func() bool { mu.Lock(); defer mu.Unlock(); return count["slow"] >= 1 })
}

// oldestUnsent follows the buffer's oldest reading as readings are acked
// (deleted), starting each search where the previous one ended.
func TestOldestUnsentFollowsDeletes(t *testing.T) {
	cfg := groupConfig(t, "tcp://127.0.0.1:1", "  - {name: a, driver: fake}\n")
	a, err := New(cfg, WithRegistry(registry()), WithClock(fixedClock{}))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, ok, err := a.oldestUnsent(); ok || err != nil {
		t.Fatalf("empty buffer: ok %v, err %v", ok, err)
	}
	var rs []*wire.Reading
	for i := range 5 {
		rs = append(rs, &wire.Reading{Channel: "a", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: float64(i), WallNs: int64(i + 1), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED})
	}
	if err := a.buf.Append("boot-1", rs...); err != nil {
		t.Fatal(err)
	}
	epoch := a.buf.SeqEpoch()
	for _, step := range []struct {
		del  []*wire.SeqRange
		want int64 // WallNs of the oldest, 0 = none
	}{
		{nil, 1},
		{[]*wire.SeqRange{{First: 1, Last: 2}}, 3},
		{[]*wire.SeqRange{{First: 4, Last: 4}}, 3}, // a gap after the oldest
		{[]*wire.SeqRange{{First: 3, Last: 3}}, 5},
		{[]*wire.SeqRange{{First: 5, Last: 5}}, 0},
	} {
		if len(step.del) > 0 {
			if _, err := a.buf.Delete(epoch, step.del...); err != nil {
				t.Fatal(err)
			}
		}
		rec, ok, err := a.oldestUnsent()
		if err != nil || ok != (step.want != 0) || (ok && rec.Reading.WallNs != step.want) {
			t.Fatalf("after deleting %v: oldest %v (ok %v, err %v), want wall %d", step.del, rec.Reading, ok, err, step.want)
		}
	}
}

// instantSensor is a fakeSensor that declares itself sensor.Instant.
type instantSensor struct {
	fakeSensor
	calls *atomic.Int32
}

func (s instantSensor) Sense(ctx context.Context) ([]sensor.Value, error) {
	s.calls.Add(1)
	return s.fakeSensor.Sense(ctx)
}
func (instantSensor) Instant() bool { return true }

// Instant sensors are sensed on the schedule's goroutine, beside channels
// that sense on their own: every tick still takes every channel's reading
// and appends them in one write, and Instant channels add no goroutine.
func TestInstantSensorsShareTheScheduleGoroutine(t *testing.T) {
	broker := mqtttest.Start(t)
	ackAll(t, broker.URL())
	cfg := groupConfig(t, broker.URL(), `  - {name: a, driver: instant, interval: 1s, quantities: [active_power]}
  - {name: b, driver: fake, interval: 1s, quantities: [active_power]}
  - {name: c, driver: instant, interval: 1s, quantities: [active_power]}
`)
	var calls atomic.Int32
	reg := registry()
	reg.Register(sensor.Driver{Name: "instant", New: func(sensor.Config, sensor.Env) (sensor.Sensor, error) {
		return instantSensor{calls: &calls}, nil
	}})
	var mu sync.Mutex
	var writes []int // readings per write, in order
	var lastSeq uint64
	var lastWall int64
	tick := make(chan struct{})
	a, err := New(cfg, WithRegistry(reg), WithClock(fixedClock{}),
		WithTicker(func(string, time.Duration) Ticker {
			return &gatedTicker{countTicker: countTicker{n: 4, interval: time.Second}, gate: tick}
		}),
		WithReadingHook(func(_ string, _ uint64, r *wire.Reading) {
			mu.Lock()
			defer mu.Unlock()
			if n := len(writes); n > 0 && lastSeq+1 == r.Seq && r.WallNs == lastWall {
				writes[n-1]++
			} else {
				writes = append(writes, 1)
			}
			lastSeq, lastWall = r.Seq, r.WallNs
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	tick <- struct{}{}
	// While sampling, only the channel that is not Instant has a sensing
	// goroutine of its own.
	var stacks bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&stacks, 2); err != nil {
		t.Fatal(err)
	}
	senseLoops := strings.Count(stacks.String(), "created by github.com/gridedge/gridedge/edge/agent.(*Agent).sampleGroup ")
	for range 3 {
		tick <- struct{}{}
	}
	wctx, wcancel := context.WithTimeout(ctx, 45*time.Second)
	defer wcancel()
	if err := a.WaitDrained(wctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []int{3, 3, 3, 3}; !slices.Equal(writes, want) {
		t.Fatalf("readings per tick and write: %v, want %v", writes, want)
	}
	if calls.Load() != 8 {
		t.Fatalf("instant sensors sensed %d times, want 8", calls.Load())
	}
	if senseLoops != 1 {
		t.Fatalf("%d sensing goroutines for 1 channel that is not Instant and 2 that are", senseLoops)
	}
}

// gatedTicker is a countTicker that waits for its gate before each tick.
type gatedTicker struct {
	countTicker
	gate chan struct{}
}

func (g *gatedTicker) Next(ctx context.Context) (clock.Stamp, error) {
	if g.k == g.n {
		return g.countTicker.Next(ctx) // the schedule has ended
	}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return clock.Stamp{}, ctx.Err()
	}
	return g.countTicker.Next(ctx)
}
