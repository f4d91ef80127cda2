package collector

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/wire"
)

func TestIngestDedupDeadLettersAndAcks(t *testing.T) {
	b := mqtttest.Start(t)
	c, _ := start(t, testConfig(t, b.URL(), t.TempDir()))

	// Every ack must find its batch durable in the readings log.
	logged := func() int64 {
		var n int64
		for _, p := range c.rlog.Stats().Partitions {
			n += p.Durable
		}
		return n
	}
	early := make(chan int64, 100)
	acked := 0
	ag := newAgent(t, b.URL(), "agent-dev-1", func(a *wire.Ack) {
		acked++
		if d := logged(); d < int64(acked) {
			early <- d
		}
	})

	garbage := []byte("\xff\xfe not a protobuf")
	wrongVersion := func() []byte {
		p := encode(t, makeBatch("dev-1", 9, 1000, 3))
		var bb wire.Batch
		if err := proto.Unmarshal(p, &bb); err != nil {
			t.Fatal(err)
		}
		bb.SchemaVersion = 2
		out, _ := proto.Marshal(&bb)
		return out
	}()
	ag.publish("site-a", "dev-1", encode(t, makeBatch("dev-1", 9, 0, 100)))
	ag.publish("site-a", "dev-1", garbage)
	ag.publish("site-a", "dev-1", wrongVersion)
	ag.publish("site-a", "dev-1", encode(t, makeBatch("dev-2", 9, 0, 5)))    // dev-2's batch on dev-1's topic
	ag.publish("site-a", "dev-1", encode(t, makeBatch("dev-1", 9, 0, 100)))  // resend
	ag.publish("site-a", "dev-1", encode(t, makeBatch("dev-1", 9, 50, 100))) // half new

	waitFor(t, "three acks", func() bool { return ag.ackCount() >= 3 })
	select {
	case d := <-early:
		t.Fatalf("ack published with only %d records durable in the readings log", d)
	default:
	}
	ag.mu.Lock()
	acks := append([]*wire.Ack(nil), ag.acks...)
	ag.mu.Unlock()
	if len(acks) != 3 {
		t.Fatalf("%d acks, want 3 (invalid payloads are never acked)", len(acks))
	}
	wantRanges := [][2]uint64{{0, 99}, {0, 99}, {50, 149}}
	for i, a := range acks {
		if a.DeviceId != "dev-1" || a.SeqEpoch != 9 || len(a.Ranges) != 1 || a.Ranges[0].First != wantRanges[i][0] || a.Ranges[0].Last != wantRanges[i][1] {
			t.Fatalf("ack %d: %v, want range %v", i, a, wantRanges[i])
		}
	}
	waitFor(t, "150 readings stored", func() bool { return readingsStored(t, c.HTTPAddr(), "dev-1") == 150 })
	var dl struct{ Deadletters []store.DeadLetter }
	getJSON(t, "http://"+c.HTTPAddr()+"/api/v1/deadletters", &dl)
	reasons := map[string]bool{}
	for _, d := range dl.Deadletters {
		reasons[d.Reason] = true
	}
	if len(dl.Deadletters) != 3 || !reasons["malformed"] || !reasons["schema_version"] || !reasons["device_mismatch"] {
		t.Fatalf("dead letters %+v", dl.Deadletters)
	}
	checkWindows(t, c.HTTPAddr(), "dev-1", makeBatch("dev-1", 9, 0, 150).Readings, time.Minute)
	checkWindows(t, c.HTTPAddr(), "dev-1", makeBatch("dev-1", 9, 0, 150).Readings, 5*time.Minute)
}

func TestRestartKeepsCountsExact(t *testing.T) {
	b := mqtttest.Start(t)
	dir := t.TempDir()
	cfg := testConfig(t, b.URL(), dir)
	c, stop := start(t, cfg)
	ag := newAgent(t, b.URL(), "agent", nil)
	for i := 0; i < 5; i++ {
		ag.publish("s", "dev-1", encode(t, makeBatch("dev-1", 1, uint64(i*40), 40)))
	}
	waitFor(t, "5 acks", func() bool { return ag.ackCount() >= 5 })
	stop()

	c, _ = start(t, cfg)
	// The agent resends everything (it did not see... or lost the acks) plus new data.
	for i := 0; i < 8; i++ {
		ag.publish("s", "dev-1", encode(t, makeBatch("dev-1", 1, uint64(i*40), 40)))
	}
	waitFor(t, "13 acks", func() bool { return ag.ackCount() >= 13 })
	waitFor(t, "320 readings stored", func() bool { return readingsStored(t, c.HTTPAddr(), "dev-1") == 320 })
	var out struct{ Devices []deviceJSON }
	getJSON(t, "http://"+c.HTTPAddr()+"/api/v1/devices", &out)
	if len(out.Devices) != 1 || out.Devices[0].ReadingsStored != 320 || out.Devices[0].Duplicates != 200 {
		t.Fatalf("devices after restart %+v, want 320 stored, 200 duplicates", out.Devices)
	}
	checkWindows(t, c.HTTPAddr(), "dev-1", makeBatch("dev-1", 1, 0, 320).Readings, time.Minute)
}

func TestStatusIsKept(t *testing.T) {
	b := mqtttest.Start(t)
	ag := newAgent(t, b.URL(), "agent", nil)
	// Retained before the collector exists: it must still see it.
	p, _ := wire.EncodeStatus(&wire.Status{DeviceId: "dev-7", Online: true, TimeZone: "Europe/Paris", AgentVersion: "1.0"})
	if tok := ag.client.Publish("gridedge/v1/s/dev-7/status", 1, true, p); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	c, _ := start(t, testConfig(t, b.URL(), t.TempDir()))
	waitFor(t, "dev-7 online", func() bool {
		var out struct{ Devices []deviceJSON }
		getJSON(t, "http://"+c.HTTPAddr()+"/api/v1/devices", &out)
		return len(out.Devices) == 1 && out.Devices[0].Online && out.Devices[0].TimeZone == "Europe/Paris"
	})
}

func TestEmbeddedBroker(t *testing.T) {
	cfg := testConfig(t, "", t.TempDir())
	cfg.EmbeddedBroker = "127.0.0.1:0"
	cfg.Broker.AllowAnonymous = true // the test agent reads every ack; cmd/gridedge-collector tests the authenticated path
	c, _ := start(t, cfg)
	ag := newAgent(t, c.MQTTURL(), "agent", nil)
	ag.publish("s", "dev-1", encode(t, makeBatch("dev-1", 1, 0, 10)))
	waitFor(t, "ack through the embedded broker", func() bool { return ag.ackCount() == 1 })
	waitFor(t, "10 readings stored", func() bool { return readingsStored(t, c.HTTPAddr(), "dev-1") == 10 })
	if got := readingsStored(t, c.HTTPAddr(), "dev-1"); got != 10 {
		t.Fatalf("readings stored %d", got)
	}
}

func TestNewRejectsBadConfigNamingTheField(t *testing.T) {
	for field, mutate := range map[string]func(*Config){
		"mqtt_url":     func(c *Config) { c.MQTTURL = "" },
		"window_sizes": func(c *Config) { c.WindowSizes = []time.Duration{time.Millisecond} },
		"site_tz":      func(c *Config) { c.SiteTZ = "Mars/Olympus" },
		"data_dir":     func(c *Config) { c.DataDir = "" },
		"ack_queue":    func(c *Config) { c.AckQueue = 0 },
	} {
		cfg := testConfig(t, "tcp://127.0.0.1:1", t.TempDir())
		mutate(&cfg)
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: error %v does not name the field", field, err)
		}
	}
	// A collector that is never run releases its resources on Close.
	c, err := New(testConfig(t, "tcp://127.0.0.1:1", t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// Without a broker the collector keeps retrying, reports itself unhealthy,
// and still stops when asked.
func TestUnreachableBrokerIsUnhealthyAndStops(t *testing.T) {
	c, err := New(testConfig(t, "tcp://127.0.0.1:1", t.TempDir()), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var resp *http.Response
	waitFor(t, "healthz to answer", func() bool {
		resp, err = httpClient.Get("http://" + c.HTTPAddr() + "/healthz")
		return err == nil
	})
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("healthz %d without a broker, want 503", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return after cancel")
	}
}

// A broker crash and restart: the collector reconnects and resubscribes by
// itself and keeps storing exactly once. Mosquitto does not restore shared
// subscriptions from its persistence file, so batches published before the
// collector has resubscribed are dropped by the broker; like the real agent,
// the test resends whatever has not been acked.
func TestBrokerRestart(t *testing.T) {
	b := mqtttest.Start(t)
	c, _ := start(t, testConfig(t, b.URL(), t.TempDir()))
	ag := newAgent(t, b.URL(), "agent-before", nil)
	for i := 0; i < 5; i++ {
		ag.publish("s", "dev-1", encode(t, makeBatch("dev-1", 1, uint64(i*20), 20)))
	}
	waitFor(t, "acks before the crash", func() bool { return ag.ackCount() == 5 })
	b.Kill()
	b.Restart()
	ag2 := newAgent(t, b.URL(), "agent-after", nil)
	acked := func() map[uint64]bool {
		ag2.mu.Lock()
		defer ag2.mu.Unlock()
		out := map[uint64]bool{}
		for _, a := range ag2.acks {
			out[a.Ranges[0].First] = true
		}
		return out
	}
	deadline := time.Now().Add(waitLimit)
	for len(acked()) < 10 { // resends the first five, then five new
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 10 batches acked after the broker restart", len(acked()))
		}
		done := acked()
		for i := 0; i < 10; i++ {
			if !done[uint64(i*20)] {
				ag2.publish("s", "dev-1", encode(t, makeBatch("dev-1", 1, uint64(i*20), 20)))
			}
		}
		waitUntil(2*time.Second, func() bool { return len(acked()) == 10 })
	}
	waitFor(t, "200 readings stored", func() bool { return readingsStored(t, c.HTTPAddr(), "dev-1") == 200 })
	if got := readingsStored(t, c.HTTPAddr(), "dev-1"); got != 200 {
		t.Fatalf("readings stored %d, want 200", got)
	}
}

// waitUntil polls cond for at most d and reports whether it held.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// Stopping the collector in the middle of a stream loses nothing at the
// broker: messages it did not handle are not acknowledged to the broker, which
// redelivers them (with everything queued meanwhile) to the persistent
// session after the restart, without any resend by the agent.
func TestStopMidStreamLosesNothingWithoutResend(t *testing.T) {
	b := mqtttest.Start(t)
	cfg := testConfig(t, b.URL(), t.TempDir())
	c, stop := start(t, cfg)
	ag := newAgent(t, b.URL(), "agent", nil)
	const batches, perBatch = 100, 20
	for i := 0; i < batches; i++ {
		ag.publish("s", "dev-1", encode(t, makeBatch("dev-1", 1, uint64(i*perBatch), perBatch)))
		if i == batches/4 {
			waitFor(t, "ingest under way", func() bool { return readingsStored(t, c.HTTPAddr(), "dev-1") > 0 })
			stop()
		}
	}
	c, _ = start(t, cfg)
	waitFor(t, "every reading after the restart", func() bool {
		return readingsStored(t, c.HTTPAddr(), "dev-1") == batches*perBatch
	})
	checkWindows(t, c.HTTPAddr(), "dev-1", makeBatch("dev-1", 1, 0, batches*perBatch).Readings, time.Minute)
}
