package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gridedge/gridedge/edge/clock"
	"github.com/gridedge/gridedge/edge/config"
	"github.com/gridedge/gridedge/edge/status"
	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/poll"
	"github.com/gridedge/gridedge/shared/topic"
	"github.com/gridedge/gridedge/shared/wire"
)

var t0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

type fixedClock struct{}

func (fixedClock) Now() clock.Stamp {
	return clock.Stamp{BootID: "boot-1", WallNs: time.Now().UnixNano(), Quality: wire.TimeQuality_TIME_QUALITY_SYNCED}
}
func (fixedClock) Correct(s clock.Stamp) clock.Stamp { return s }
func (fixedClock) Quality() wire.TimeQuality         { return wire.TimeQuality_TIME_QUALITY_SYNCED }

// countTicker yields n samples at t0 + k*interval, as fast as asked.
type countTicker struct {
	n, k     int
	interval time.Duration
}

func (c *countTicker) Next(ctx context.Context) (clock.Stamp, error) {
	if ctx.Err() != nil {
		return clock.Stamp{}, ctx.Err()
	}
	if c.k == c.n {
		return clock.Stamp{}, ErrStopSampling
	}
	w := t0.Add(time.Duration(c.k) * c.interval)
	c.k++
	return clock.Stamp{BootID: "boot-1", WallNs: w.UnixNano(), MonoNs: int64(c.k) * int64(c.interval), Quality: wire.TimeQuality_TIME_QUALITY_SYNCED}, nil
}

// fakeSensor reports the sample time's minute as its value, or fails.
type fakeSensor struct{ fail bool }

func (f fakeSensor) Sense(ctx context.Context) ([]sensor.Value, error) {
	if f.fail {
		return nil, errors.New("bus timeout")
	}
	st, ok := SampleTime(ctx)
	if !ok {
		return nil, errors.New("no sample time in context")
	}
	return []sensor.Value{
		{Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: float64(st.WallNs / int64(time.Minute))},
		{Quantity: wire.Quantity_QUANTITY_VOLTAGE, Value: 230}, // not asked for: dropped
	}, nil
}
func (fakeSensor) String() string { return "fake" }
func (fakeSensor) Close() error   { return nil }

// rampSensor reports the sample time's second within the minute as power.
type rampSensor struct{}

func (rampSensor) Sense(ctx context.Context) ([]sensor.Value, error) {
	st, _ := SampleTime(ctx)
	return []sensor.Value{{Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: float64(st.WallNs/1e9%60) * 100}}, nil
}
func (rampSensor) String() string { return "ramp" }
func (rampSensor) Close() error   { return nil }

func registry() *sensor.Registry {
	r := sensor.NewRegistry()
	r.Register(sensor.Driver{Name: "ramp", New: func(sensor.Config, sensor.Env) (sensor.Sensor, error) { return rampSensor{}, nil }})
	r.Register(sensor.Driver{Name: "fake", New: func(cfg sensor.Config, env sensor.Env) (sensor.Sensor, error) {
		var o struct {
			Fail bool `yaml:"fail"`
		}
		if err := cfg.DecodeOptions(&o); err != nil {
			return nil, err
		}
		return fakeSensor{fail: o.Fail}, nil
	}})
	return r
}

func testConfig(t *testing.T, url string) config.Config {
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
device_id: dev-1
site: site-1
state_dir: %s
mqtt: {url: %q, ack_timeout: 2s, max_batch_readings: 25}
buffer: {dir: %s}
sample_interval: 1m
status_interval: 100ms
metrics_addr: 127.0.0.1:0
channels:
  - {name: mains, driver: fake, quantities: [active_power]}
  - {name: broken, driver: fake, options: {fail: true}}
  - {name: sub1, driver: fake, interval: 30s, quantities: [active_power]}
`, filepath.Join(dir, "state"), url, filepath.Join(dir, "buf"))))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// ackAll subscribes like a collector and acks every batch.
func ackAll(t testing.TB, url string) {
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("collector").SetOrderMatters(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(topic.Filter(topic.Data), 1, func(c mqtt.Client, m mqtt.Message) {
		b, err := wire.DecodeBatch(m.Payload())
		if err != nil {
			t.Errorf("bad batch: %v", err)
			return
		}
		var seqs []uint64
		for _, r := range b.Readings {
			seqs = append(seqs, r.Seq)
		}
		site, device, _, _ := topic.Parse(m.Topic())
		ack, _ := wire.EncodeAck(&wire.Ack{DeviceId: b.DeviceId, SeqEpoch: b.SeqEpoch, Ranges: wire.RangesOf(seqs)})
		c.Publish(topic.For(site, device, topic.Ack), 1, false, ack)
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
}

func TestAgentEndToEnd(t *testing.T) {
	broker := mqtttest.Start(t)
	ackAll(t, broker.URL())
	var mu sync.Mutex
	seen := map[string][]*wire.Reading{}
	a, err := New(testConfig(t, broker.URL()),
		WithRegistry(registry()), WithClock(fixedClock{}),
		WithTicker(func(ch string, iv time.Duration) Ticker { return &countTicker{n: 60, interval: iv} }),
		WithReadingHook(func(device string, epoch uint64, r *wire.Reading) {
			mu.Lock()
			seen[r.Channel] = append(seen[r.Channel], r)
			mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitCtx, waitCancel := context.WithTimeout(ctx, 45*time.Second)
	defer waitCancel()
	if err := a.WaitDrained(waitCtx); err != nil {
		t.Fatal(err)
	}
	st := a.Stats()

	// The same numbers on /metrics and in status.json.
	resp, err := http.Get("http://" + a.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"gridedge_agent_readings_acked_total 120", `gridedge_agent_sense_errors_total{channel="broken"} 60`, "gridedge_agent_buffered_readings 0"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	snap := poll.For(t, 30*time.Second, "status.json to show 120 acked", func() (status.Snapshot, error) { return status.Read(a.cfg.StateDir) },
		func(s status.Snapshot) bool { return s.Acked == 120 })
	if snap.SenseErrors["broken"] != 60 || snap.Buffered != 0 || snap.DeviceID != "dev-1" || snap.ClockQuality != "synced" {
		t.Fatalf("status.json %+v", snap)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if st.Generated != 120 || st.Acked != 120 || st.Buffered != 0 {
		t.Fatalf("stats %+v, want 120 generated and acked", st)
	}
	if st.ChannelErrors["broken"] != 60 || st.SenseErrors != 60 || st.ChannelErrors["mains"] != 0 {
		t.Fatalf("errors %+v", st.ChannelErrors)
	}
	mu.Lock()
	defer mu.Unlock()
	for ch, iv := range map[string]time.Duration{"mains": time.Minute, "sub1": 30 * time.Second} {
		rs := seen[ch]
		if len(rs) != 60 {
			t.Fatalf("%s: %d readings", ch, len(rs))
		}
		for k, r := range rs {
			want := t0.Add(time.Duration(k) * iv)
			if r.WallNs != want.UnixNano() || r.Value != float64(want.UnixNano()/int64(time.Minute)) || r.Seq == 0 {
				t.Fatalf("%s[%d]: time %v value %v seq %d, want %v", ch, k, time.Unix(0, r.WallNs).UTC(), r.Value, r.Seq, want)
			}
		}
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	cfg := testConfig(t, "tcp://127.0.0.1:1")
	cfg.Channels[1].Driver = "nope"
	_, err := New(cfg, WithRegistry(registry()), WithClock(fixedClock{}))
	if err == nil || !strings.Contains(err.Error(), `channels[1]`) || !strings.Contains(err.Error(), `unknown driver "nope"`) {
		t.Fatalf("error %v", err)
	}
	// The failed New released the buffer: a second agent can open it.
	cfg.Channels[1].Driver = "fake"
	a, err := New(cfg, WithRegistry(registry()), WithClock(fixedClock{}))
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
}

func TestWallTickerAligns(t *testing.T) {
	tk := SystemTicker(fixedClock{})("mains", 50*time.Millisecond)
	iv := int64(50 * time.Millisecond)
	prev := int64(-1)
	for i := 0; i < 3; i++ {
		st, err := tk.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// Each sample falls in a later interval slot than the one before:
		// the ticker waits for the next boundary, never fires twice in one.
		if slot := st.WallNs / iv; slot <= prev {
			t.Fatalf("sample %d in slot %d, previous %d", i, slot, prev)
		} else {
			prev = slot
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tk.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Next: %v", err)
	}
}

// blockTicker never fires: a wedged schedule.
type blockTicker struct{}

func (blockTicker) Next(ctx context.Context) (clock.Stamp, error) {
	<-ctx.Done()
	return clock.Stamp{}, ctx.Err()
}

func TestHealthyDetectsAStuckSampler(t *testing.T) {
	broker := mqtttest.Start(t)
	cfg := testConfig(t, broker.URL())
	a, err := New(cfg, WithRegistry(registry()), WithClock(fixedClock{}),
		WithTicker(func(ch string, iv time.Duration) Ticker {
			if ch == "sub1" {
				return blockTicker{}
			}
			return &countTicker{n: 1, interval: iv}
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	poll.Until(t, 30*time.Second, "publisher running", func() bool { return !a.pub.Heartbeat().IsZero() })
	poll.Until(t, 30*time.Second, "finished channels done", func() bool { return a.channels[0].done.Load() && a.channels[1].done.Load() })
	if err := a.Healthy(); err != nil {
		t.Fatalf("healthy agent reported %v", err)
	}
	// An hour later sub1's sampler has not gone round: unhealthy. The
	// channels whose schedule ended do not count.
	err = a.healthyAt(time.Now().Add(time.Hour))
	if err == nil || !strings.Contains(err.Error(), "channel sub1") {
		t.Fatalf("stuck sampler not reported: %v", err)
	}
}

func TestAggregation(t *testing.T) {
	broker := mqtttest.Start(t)
	ackAll(t, broker.URL())
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
device_id: dev-agg
site: site-1
state_dir: %s
mqtt: {url: %q}
buffer: {dir: %s}
channels:
  - {name: mains, driver: ramp, interval: 10s, aggregate: 1m, quantities: [active_power, energy]}
`, filepath.Join(dir, "state"), broker.URL(), filepath.Join(dir, "buf"))))
	if err != nil {
		t.Fatal(err)
	}
	runOnce := func() []*wire.Reading {
		var mu sync.Mutex
		var got []*wire.Reading
		a, err := New(cfg, WithRegistry(registry()), WithClock(fixedClock{}),
			WithTicker(func(string, time.Duration) Ticker { return &countTicker{n: 18, interval: 10 * time.Second} }),
			WithReadingHook(func(_ string, _ uint64, r *wire.Reading) { mu.Lock(); got = append(got, r); mu.Unlock() }))
		if err != nil {
			t.Fatal(err)
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
		return got
	}

	got := runOnce()
	// Three minutes of samples at 0,10,..,50 s: power 0..5000 W.
	// Energy: trapezoids between consecutive samples 10 s apart.
	powers := make([]float64, 18)
	for i := range powers {
		powers[i] = float64(i%6) * 1000
	}
	energyAt := func(last int) float64 { // Wh after sample index last
		e := 0.0
		for i := 1; i <= last; i++ {
			e += (powers[i-1] + powers[i]) / 2 * 10 / 3600
		}
		return e
	}
	type key struct {
		ch string
		q  wire.Quantity
		m  int
	}
	vals := map[key]float64{}
	for _, r := range got {
		m := int((r.WallNs - t0.UnixNano()) / int64(time.Minute))
		if r.WallNs != t0.Add(time.Duration(m)*time.Minute).UnixNano() {
			t.Fatalf("summary stamped %v, not at its window's first sample", time.Unix(0, r.WallNs).UTC())
		}
		vals[key{r.Channel, r.Quantity, m}] = r.Value
	}
	if len(got) != 12 {
		t.Fatalf("%d readings, want 3 windows x (mean, min, max, energy)", len(got))
	}
	p := wire.Quantity_QUANTITY_ACTIVE_POWER
	for m := 0; m < 3; m++ {
		if vals[key{"mains", p, m}] != 2500 || vals[key{"mains.min", p, m}] != 0 || vals[key{"mains.max", p, m}] != 5000 {
			t.Fatalf("minute %d: mean %v min %v max %v", m, vals[key{"mains", p, m}], vals[key{"mains.min", p, m}], vals[key{"mains.max", p, m}])
		}
		e := vals[key{"mains", wire.Quantity_QUANTITY_ENERGY, m}]
		if want := energyAt(6*m + 5); math.Abs(e-want) > 1e-9 {
			t.Fatalf("minute %d: energy %v, want %v", m, e, want)
		}
	}
	// The counter is persisted: a restart continues from where it stopped.
	again := runOnce()
	for _, r := range again {
		if r.Quantity == wire.Quantity_QUANTITY_ENERGY && r.Value < energyAt(17) {
			t.Fatalf("energy restarted at %v after a restart, was %v", r.Value, energyAt(17))
		}
	}
}
