package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/shared/poll"
	"github.com/gridedge/gridedge/shared/topic"
	"github.com/gridedge/gridedge/shared/wire"
)

const waitLimit = 60 * time.Second

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("DEBUGLOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testConfig(t testing.TB, mqttURL, dir string) Config {
	cfg := DefaultConfig()
	cfg.MQTTURL = mqttURL
	cfg.DataDir = dir
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.ClientID = "collector-test"
	cfg.WindowSizes = []time.Duration{time.Minute, 5 * time.Minute}
	cfg.OutOfOrderness = 5 * time.Second
	cfg.CommitInterval = 50 * time.Millisecond
	return cfg
}

// start runs a collector until the test ends (or stop is called) and waits
// until it is subscribed.
func start(t *testing.T, cfg Config) (c *Collector, stop func()) {
	t.Helper()
	c, err := New(cfg, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-c.Ready():
	case err := <-done:
		t.Fatalf("collector stopped before subscribing: %v", err)
	case <-time.After(waitLimit):
		t.Fatal("collector did not subscribe")
	}
	return c, stop
}

// agent is a test stand-in for gridedge-agent: it publishes batches and
// records the acks it receives.
type agent struct {
	t      testing.TB
	client paho.Client
	mu     sync.Mutex
	acks   []*wire.Ack
	onAck  func(*wire.Ack)
}

func newAgent(t testing.TB, url, id string, onAck func(*wire.Ack)) *agent {
	t.Helper()
	a := &agent{t: t, onAck: onAck}
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true)
	a.client = paho.NewClient(opts)
	if tok := a.client.Connect(); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("agent connect: %v", tok.Error())
	}
	t.Cleanup(func() { a.client.Disconnect(100) })
	tok := a.client.Subscribe(topic.Prefix+"/+/+/"+string(topic.Ack), 1, func(_ paho.Client, m paho.Message) {
		ack, err := wire.DecodeAck(m.Payload())
		if err != nil {
			t.Errorf("agent: bad ack on %s: %v", m.Topic(), err)
			return
		}
		if a.onAck != nil {
			a.onAck(ack)
		}
		a.mu.Lock()
		a.acks = append(a.acks, ack)
		a.mu.Unlock()
	})
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("agent subscribe: %v", tok.Error())
	}
	return a
}

func (a *agent) publish(site, device string, payload []byte) {
	a.t.Helper()
	tok := a.client.Publish(topic.For(site, device, topic.Data), 1, false, payload)
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		a.t.Fatalf("agent publish: %v", tok.Error())
	}
}

func (a *agent) ackCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.acks)
}

// waitFor polls cond until it holds or the generous limit passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, waitLimit, what, cond)
}

// makeBatch returns readings first..first+n-1 of a device, one per second
// from t0 on two channels, so windows get several readings.
func makeBatch(device string, epoch, first uint64, n int) *wire.Batch {
	b := &wire.Batch{SchemaVersion: wire.SchemaVersion, DeviceId: device, SeqEpoch: epoch, BootId: "boot-1"}
	for i := 0; i < n; i++ {
		seq := first + uint64(i)
		ch := "mains"
		if seq%2 == 1 {
			ch = "sub1"
		}
		b.Readings = append(b.Readings, &wire.Reading{
			Seq: seq, Channel: ch, Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER,
			Value:  float64((seq*7919)%1000) / 4,
			WallNs: t0.Add(time.Duration(seq) * time.Second).UnixNano(), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED,
		})
	}
	return b
}

func encode(t testing.TB, b *wire.Batch) []byte {
	t.Helper()
	p, err := wire.EncodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

type deviceJSON struct {
	ID             string `json:"id"`
	ReadingsStored uint64 `json:"readings_stored"`
	Duplicates     uint64 `json:"duplicates"`
	Online         bool   `json:"online"`
	TimeZone       string `json:"time_zone"`
}

func readingsStored(t testing.TB, httpAddr, device string) uint64 {
	var out struct{ Devices []deviceJSON }
	getJSON(t, "http://"+httpAddr+"/api/v1/devices", &out)
	for _, d := range out.Devices {
		if d.ID == device {
			return d.ReadingsStored
		}
	}
	return 0
}

// checkWindows compares the collector's windows with a direct computation
// over the readings it should hold.
func checkWindows(t *testing.T, httpAddr, device string, readings []*wire.Reading, size time.Duration) {
	t.Helper()
	type agg struct {
		count         uint64
		sum, min, max float64
	}
	want := map[string]*agg{}
	for _, r := range readings {
		start := time.Unix(0, r.WallNs).UTC().Truncate(size)
		k := r.Channel + "|" + start.Format(time.RFC3339)
		a := want[k]
		if a == nil {
			a = &agg{min: math.Inf(1), max: math.Inf(-1)}
			want[k] = a
		}
		a.count++
		a.sum += r.Value
		a.min, a.max = min(a.min, r.Value), max(a.max, r.Value)
	}
	// Workers commit after the ack and a device's newest window appears
	// once it is provisional (idle) or closed: poll until the windows match.
	diff := func() string {
		var out struct{ Windows []store.Window }
		getJSON(t, fmt.Sprintf("http://%s/api/v1/windows?device=%s&size=%s&limit=100000", httpAddr, device, size), &out)
		if len(out.Windows) != len(want) {
			return fmt.Sprintf("%v windows: got %d, want %d", size, len(out.Windows), len(want))
		}
		for _, w := range out.Windows {
			a := want[w.Channel+"|"+w.Start.Format(time.RFC3339)]
			if a == nil || w.Count != a.count || w.Min != a.min || w.Max != a.max || math.Abs(w.Sum-a.sum) > 1e-6 {
				return fmt.Sprintf("%v window %s %v: got %+v, want %+v", size, w.Channel, w.Start, w, a)
			}
		}
		return ""
	}
	poll.For(t, waitLimit, fmt.Sprintf("%v windows equal to the readings", size),
		func() (string, error) { return diff(), nil }, func(d string) bool { return d == "" })
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
