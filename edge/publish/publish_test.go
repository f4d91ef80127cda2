package publish

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gridedge/gridedge/edge/buffer"
	"github.com/gridedge/gridedge/edge/clock"
	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/poll"
	"github.com/gridedge/gridedge/shared/topic"
	"github.com/gridedge/gridedge/shared/wire"
)

const (
	site   = "site-1"
	device = "dev-1"
)

// fakeClock is a synced clock in one boot.
type fakeClock struct{ start time.Time }

func (c fakeClock) Now() clock.Stamp {
	return clock.Stamp{BootID: "boot-now", MonoNs: int64(time.Since(c.start)), WallNs: time.Now().UnixNano(), Quality: wire.TimeQuality_TIME_QUALITY_SYNCED}
}
func (fakeClock) Correct(s clock.Stamp) clock.Stamp { return s }
func (fakeClock) Quality() wire.TimeQuality         { return wire.TimeQuality_TIME_QUALITY_SYNCED }

func newBuffer(t *testing.T) *buffer.Buffer {
	t.Helper()
	root := t.TempDir()
	b, err := buffer.Open(filepath.Join(root, "buf"), filepath.Join(root, "state"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func fill(t *testing.T, b *buffer.Buffer, boot string, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := 0; i < n; i++ {
		r := &wire.Reading{Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: float64(i),
			WallNs: time.Now().UnixNano(), MonoNs: int64(i), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED}
		if err := b.Append(boot, r); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, r.Seq)
	}
	return seqs
}

// start runs a publisher until the test ends.
func start(t *testing.T, url string, b *buffer.Buffer, cfg Config, opts ...Option) *Publisher {
	t.Helper()
	cfg.Site, cfg.DeviceID, cfg.URL = site, device, url
	opts = append([]Option{WithBackoff(50*time.Millisecond, 500*time.Millisecond)}, opts...)
	p, err := New(cfg, b, fakeClock{start: time.Now()}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	p.Notify()
	return p
}

// collector is a fake collector: it records every batch on the device's
// data topic and, when autoAck is set, acks what it received.
type collector struct {
	t       *testing.T
	client  mqtt.Client
	mu      sync.Mutex
	seen    map[uint64]int
	batches []*wire.Batch
	autoAck bool
	// firstOld lists readings of boot "boot-old" in order of first arrival.
	firstOld []uint64
}

func newCollector(t *testing.T, url string, autoAck bool) *collector {
	t.Helper()
	c := &collector{t: t, seen: map[uint64]int{}, autoAck: autoAck}
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("collector-%d", time.Now().UnixNano())).
		SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(500 * time.Millisecond)
	opts.SetOnConnectHandler(func(cl mqtt.Client) {
		cl.Subscribe(topic.For(site, device, topic.Data), 1, c.onBatch)
	})
	c.client = mqtt.NewClient(opts)
	if tok := c.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("collector connect: %v", tok.Error())
	}
	// Wait until the subscription is in place before anything is sent.
	tok := c.client.Subscribe(topic.For(site, device, topic.Data), 1, c.onBatch)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("collector subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { c.client.Disconnect(100) })
	return c
}

func (c *collector) onBatch(_ mqtt.Client, m mqtt.Message) {
	b, err := wire.DecodeBatch(m.Payload())
	if err != nil {
		c.t.Errorf("collector: bad batch: %v", err)
		return
	}
	c.mu.Lock()
	c.batches = append(c.batches, b)
	var seqs []uint64
	for _, r := range b.Readings {
		if c.seen[r.Seq] == 0 && b.BootId == "boot-old" {
			c.firstOld = append(c.firstOld, r.Seq)
		}
		c.seen[r.Seq]++
		seqs = append(seqs, r.Seq)
	}
	auto := c.autoAck
	c.mu.Unlock()
	if auto {
		// Handlers run in arrival order (so the test sees the order batches
		// came in); a handler must not wait for its own publish.
		payload, err := wire.EncodeAck(&wire.Ack{DeviceId: device, SeqEpoch: b.SeqEpoch, Ranges: wire.RangesOf(seqs)})
		if err != nil {
			c.t.Errorf("encode ack: %v", err)
			return
		}
		c.client.Publish(topic.For(site, device, topic.Ack), 1, false, payload)
	}
}

func (c *collector) ack(epoch uint64, ranges ...*wire.SeqRange) {
	payload, err := wire.EncodeAck(&wire.Ack{DeviceId: device, SeqEpoch: epoch, Ranges: ranges})
	if err != nil {
		c.t.Errorf("encode ack: %v", err)
		return
	}
	c.client.Publish(topic.For(site, device, topic.Ack), 1, false, payload).WaitTimeout(5 * time.Second)
}

func (c *collector) count(seq uint64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[seq]
}

func (c *collector) hasAll(seqs []uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range seqs {
		if c.seen[s] == 0 {
			return false
		}
	}
	return true
}

func TestBatchesArriveAndNothingDeletedWithoutAck(t *testing.T) {
	forEachClient(t, testBatchesArriveAndNothingDeletedWithoutAck)
}

func testBatchesArriveAndNothingDeletedWithoutAck(t *testing.T, clientOpt []Option) {
	broker := mqtttest.Start(t)
	col := newCollector(t, broker.URL(), false)
	b := newBuffer(t)
	seqs := fill(t, b, "boot-a", 120)
	seqs = append(seqs, fill(t, b, "boot-b", 10)...)
	p := start(t, broker.URL(), b, Config{MaxBatchReadings: 50, AckTimeout: time.Hour}, clientOpt...)

	poll.Until(t, 45*time.Second, "all readings at the collector", func() bool { return col.hasAll(seqs) })
	col.mu.Lock()
	for _, bt := range col.batches {
		if len(bt.Readings) > 50 || bt.DeviceId != device || bt.SeqEpoch != b.SeqEpoch() || bt.SentWallNs == 0 || bt.SentBootId != "boot-now" {
			t.Errorf("bad batch: %d readings, device %q, epoch %x, sent %d/%q", len(bt.Readings), bt.DeviceId, bt.SeqEpoch, bt.SentWallNs, bt.SentBootId)
		}
		for _, r := range bt.Readings {
			if boot := map[bool]string{true: "boot-a", false: "boot-b"}[r.Seq <= seqs[119]]; bt.BootId != boot {
				t.Errorf("seq %d in a batch of boot %q, want %q", r.Seq, bt.BootId, boot)
			}
		}
	}
	col.mu.Unlock()
	if b.Len() != 130 || p.Stats().Acked != 0 {
		t.Fatalf("readings deleted without an ack: len %d, acked %d", b.Len(), p.Stats().Acked)
	}
}

func TestAckDeletesExactlyTheAckedRanges(t *testing.T) {
	forEachClient(t, testAckDeletesExactlyTheAckedRanges)
}

func testAckDeletesExactlyTheAckedRanges(t *testing.T, clientOpt []Option) {
	broker := mqtttest.Start(t)
	col := newCollector(t, broker.URL(), false)
	b := newBuffer(t)
	seqs := fill(t, b, "boot", 20)
	p := start(t, broker.URL(), b, Config{AckTimeout: time.Hour}, clientOpt...)
	poll.Until(t, 45*time.Second, "readings sent", func() bool { return col.hasAll(seqs) })

	col.ack(b.SeqEpoch(), &wire.SeqRange{First: seqs[0], Last: seqs[4]}, &wire.SeqRange{First: seqs[10], Last: seqs[10]})
	poll.Until(t, 45*time.Second, "ack applied", func() bool { return p.Stats().Acks == 1 })
	left, err := b.Read(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	want = append(want, seqs[5:10]...)
	want = append(want, seqs[11:]...)
	if len(left) != len(want) {
		t.Fatalf("left %d readings, want %d", len(left), len(want))
	}
	for i, r := range left {
		if r.Seq != want[i] {
			t.Fatalf("left[%d] = %d, want %d", i, r.Seq, want[i])
		}
	}
	if p.Stats().Acked != 6 {
		t.Fatalf("acked %d, want 6", p.Stats().Acked)
	}
}

func TestResendAfterAckTimeout(t *testing.T) { forEachClient(t, testResendAfterAckTimeout) }

func testResendAfterAckTimeout(t *testing.T, clientOpt []Option) {
	broker := mqtttest.Start(t)
	col := newCollector(t, broker.URL(), false)
	b := newBuffer(t)
	seqs := fill(t, b, "boot", 5)
	p := start(t, broker.URL(), b, Config{AckTimeout: 300 * time.Millisecond}, clientOpt...)
	poll.Until(t, 45*time.Second, "a resend", func() bool { return col.count(seqs[0]) >= 2 })
	// The collector can see the copy before the publisher has counted it.
	poll.Until(t, 45*time.Second, "the resend counted", func() bool { return p.Stats().Resent > 0 })
	col.ack(b.SeqEpoch(), wire.RangesOf(seqs)...)
	poll.Until(t, 45*time.Second, "buffer drained", func() bool { return b.Len() == 0 })
}

func TestBadAcksAreCountedAndIgnored(t *testing.T) { forEachClient(t, testBadAcksAreCountedAndIgnored) }

func testBadAcksAreCountedAndIgnored(t *testing.T, clientOpt []Option) {
	broker := mqtttest.Start(t)
	col := newCollector(t, broker.URL(), false)
	b := newBuffer(t)
	seqs := fill(t, b, "boot", 5)
	p := start(t, broker.URL(), b, Config{AckTimeout: time.Hour}, clientOpt...)
	poll.Until(t, 45*time.Second, "readings sent", func() bool { return col.hasAll(seqs) })

	ackTopic := topic.For(site, device, topic.Ack)
	col.client.Publish(ackTopic, 1, false, []byte("not protobuf \xff\xff")).WaitTimeout(5 * time.Second)
	other, _ := wire.EncodeAck(&wire.Ack{DeviceId: "someone-else", SeqEpoch: b.SeqEpoch(), Ranges: wire.RangesOf(seqs)})
	col.client.Publish(ackTopic, 1, false, other).WaitTimeout(5 * time.Second)
	poll.Until(t, 45*time.Second, "bad acks counted", func() bool { return p.Stats().BadAcks == 2 })
	// An ack for another epoch is well-formed but deletes nothing.
	col.ack(b.SeqEpoch()^1, wire.RangesOf(seqs)...)
	poll.Until(t, 45*time.Second, "foreign-epoch ack processed", func() bool { return p.Stats().Acks == 1 })
	if b.Len() != 5 {
		t.Fatalf("bad acks deleted readings: len %d", b.Len())
	}
}

func TestBrokerKilledMidStream(t *testing.T) { forEachClient(t, testBrokerKilledMidStream) }

func testBrokerKilledMidStream(t *testing.T, clientOpt []Option) {
	broker := mqtttest.Start(t)
	col := newCollector(t, broker.URL(), true)
	b := newBuffer(t)
	p := start(t, broker.URL(), b, Config{AckTimeout: 2 * time.Second, MaxBatchReadings: 20}, clientOpt...)

	var seqs []uint64
	appendSome := func(n int) {
		for i := 0; i < n; i++ {
			seqs = append(seqs, fill(t, b, "boot", 1)...)
			p.Notify()
			time.Sleep(2 * time.Millisecond)
		}
	}
	appendSome(200)
	broker.Kill()
	appendSome(200) // produced while the broker is down
	broker.Restart()
	appendSome(200)

	poll.Until(t, 45*time.Second, "every reading acked and deleted", func() bool { return b.Len() == 0 })
	if !col.hasAll(seqs) {
		t.Fatal("buffer empty but the collector lacks readings: something was deleted without an ack")
	}
	if st := p.Stats(); st.Acked != uint64(len(seqs)) || st.Connects < 2 {
		t.Fatalf("stats %+v, want %d acked and a reconnect", st, len(seqs))
	}
}

func TestBirthAndWill(t *testing.T) { forEachClient(t, testBirthAndWill) }

func testBirthAndWill(t *testing.T, clientOpt []Option) {
	broker := mqtttest.Start(t)
	statuses := make(chan *wire.Status, 16)
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("watcher"))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer sub.Disconnect(100)
	sub.Subscribe(topic.For(site, device, topic.Status), 1, func(_ mqtt.Client, m mqtt.Message) {
		if st, err := wire.DecodeStatus(m.Payload()); err == nil {
			statuses <- st
		}
	}).WaitTimeout(10 * time.Second)

	b := newBuffer(t)
	p, err := New(Config{Site: site, DeviceID: device, URL: broker.URL()}, b, fakeClock{start: time.Now()},
		append(clientOpt, WithStatus(func() *wire.Status { return &wire.Status{BufferedReadings: uint64(b.Len())} }, time.Hour))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case st := <-statuses:
		if !st.Online || st.DeviceId != device {
			t.Fatalf("birth %+v", st)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no birth message")
	}
	cancel()
	<-done
	select {
	case st := <-statuses:
		if st.Online {
			t.Fatalf("goodbye says online")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no offline status after shutdown")
	}
}

func TestLiveFlowsWhileBacklogDrains(t *testing.T) {
	broker := mqtttest.Start(t)
	col := newCollector(t, broker.URL(), true)
	b := newBuffer(t)
	backlog := fill(t, b, "boot-old", 1500) // produced during an outage
	p := start(t, broker.URL(), b, Config{AckTimeout: 5 * time.Second, MaxBatchReadings: 50, ReplayRate: 300})

	// Live readings keep coming while the backlog replays at 300/s (≥ 4 s).
	// (What is appended before the replay starts is backlog too.)
	poll.Until(t, 45*time.Second, "backlog replay started", func() bool { return p.Stats().BacklogSent > 0 })
	var live []uint64
	for i := 0; i < 20; i++ {
		live = append(live, fill(t, b, "boot-new", 1)...)
		p.Notify()
		poll.Until(t, 45*time.Second, "live reading delivered", func() bool { return col.count(live[len(live)-1]) > 0 })
	}
	// Every live reading arrived while backlog was still outstanding.
	if col.hasAll(backlog) {
		t.Fatal("backlog finished before live readings were delivered: live data was starved")
	}
	poll.Until(t, 45*time.Second, "backlog drained", func() bool { return b.Len() == 0 })
	if !col.hasAll(backlog) || !col.hasAll(live) {
		t.Fatal("readings missing at the collector")
	}
	// The backlog went out oldest first (resends aside).
	col.mu.Lock()
	defer col.mu.Unlock()
	for i := 1; i < len(col.firstOld); i++ {
		if col.firstOld[i] <= col.firstOld[i-1] {
			t.Fatalf("backlog reading %d first arrived after %d", col.firstOld[i], col.firstOld[i-1])
		}
	}
	if st := p.Stats(); st.BacklogSent == 0 {
		t.Fatalf("stats %+v: no backlog replay", st)
	}
}

func TestAckForUnsentReadingsDeletesOnlyWhatWasSent(t *testing.T) {
	broker := mqtttest.Start(t)
	col := newCollector(t, broker.URL(), false)
	b := newBuffer(t)
	seqs := fill(t, b, "boot", 50)
	// One batch of 10 in flight at a time.
	p := start(t, broker.URL(), b, Config{AckTimeout: 2 * time.Second, MaxBatchReadings: 10}, WithMaxInFlight(1))
	poll.Until(t, 45*time.Second, "first batch sent", func() bool { return col.hasAll(seqs[:10]) })
	// A buggy collector acks everything, including 40 readings never sent.
	col.ack(b.SeqEpoch(), &wire.SeqRange{First: seqs[0], Last: seqs[49]})
	poll.Until(t, 45*time.Second, "ack applied", func() bool { return p.Stats().Acks == 1 })
	if p.Stats().Acked != 10 {
		t.Fatalf("ack deleted %d readings, only 10 were sent", p.Stats().Acked)
	}
	// The other 40 are still delivered (acked as they arrive from now on;
	// a batch that arrived just before is resent after the ack timeout).
	col.mu.Lock()
	col.autoAck = true
	col.mu.Unlock()
	poll.Until(t, 45*time.Second, "the rest sent and acked", func() bool { return col.hasAll(seqs) && b.Len() == 0 })
}

func TestSentRanges(t *testing.T) {
	cases := []struct {
		s    sender
		want string
	}{
		{sender{}, ""},
		{sender{cursor: 9}, "0-9"},
		{sender{cursor: 120, split: 100, backlog: 40}, "0-40 101-120"},
		{sender{cursor: 100, split: 100, backlog: 0}, ""},
		{sender{cursor: 130, split: 100, backlog: 100}, "0-130"},
	}
	for _, tc := range cases {
		var parts []string
		for _, r := range tc.s.sentRanges() {
			parts = append(parts, fmt.Sprintf("%d-%d", r.First, r.Last))
		}
		if got := strings.Join(parts, " "); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.s, got, tc.want)
		}
	}
}

// TestBirthBeforeData: the collector learns a device's time zone and state
// from its birth message, so on every connection the status must reach the
// broker before the first batch, even with a backlog waiting to be sent.
func TestBirthBeforeData(t *testing.T) { forEachClient(t, testBirthBeforeData) }

func testBirthBeforeData(t *testing.T, clientOpt []Option) {
	broker := mqtttest.Start(t)
	var (
		mu     sync.Mutex
		topics []string
	)
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("order-watcher"))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer sub.Disconnect(100)
	tok := sub.Subscribe(topic.Prefix+"/"+site+"/"+device+"/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		mu.Lock()
		topics = append(topics, m.Topic())
		mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	b := newBuffer(t)
	fill(t, b, "boot-1", 50) // a backlog is ready before the first connection
	start(t, broker.URL(), b, Config{}, append(clientOpt, WithStatus(func() *wire.Status { return &wire.Status{TimeZone: "Europe/Paris"} }, time.Hour))...)
	poll.Until(t, 45*time.Second, "a status and a batch", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(topics, topic.For(site, device, topic.Data)) && slices.Contains(topics, topic.For(site, device, topic.Status))
	})
	mu.Lock()
	defer mu.Unlock()
	if topics[0] != topic.For(site, device, topic.Status) {
		t.Fatalf("first message on %s, want the status before any data (order %v)", topics[0], topics[:min(len(topics), 5)])
	}
}

// forEachClient runs a publisher test over both MQTT clients: paho (the
// gateway's) and mqttlite (WithLightClient, the simulator's).
func forEachClient(t *testing.T, test func(t *testing.T, clientOpt []Option)) {
	t.Run("paho", func(t *testing.T) { test(t, nil) })
	t.Run("light", func(t *testing.T) { test(t, []Option{WithLightClient()}) })
}
