package e2e

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/topic"
	"github.com/gridedge/gridedge/shared/wire"
)

const (
	tpDevices    = 1000
	tpPerBatch   = 100
	tpPublishers = 8
	tpInflight   = 64 // unacknowledged batches per publisher
)

// tpBatches encodes batches of 100 readings for every device: round-robin
// over devices, batches per device apiece.
func tpBatches(b *testing.B, perDevice int) (topics []string, payloads [][]byte) {
	start := time.Now().Add(-time.Hour).UnixNano()
	for n := range perDevice {
		for d := range tpDevices {
			dev := fmt.Sprintf("tp-%04d", d)
			bt := &wire.Batch{SchemaVersion: wire.SchemaVersion, DeviceId: dev, SeqEpoch: 42, BootId: "b"}
			for i := range tpPerBatch {
				seq := uint64(n*tpPerBatch + i + 1)
				bt.Readings = append(bt.Readings, &wire.Reading{Seq: seq, Channel: []string{"mains", "sub1", "sub2", "sub3"}[i%4],
					Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: float64(seq % 3000), WallNs: start + int64(seq/4)*int64(time.Second),
					TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED})
			}
			p, err := wire.EncodeBatch(bt)
			if err != nil {
				b.Fatal(err)
			}
			topics = append(topics, topic.For("bench", dev, topic.Data))
			payloads = append(payloads, p)
		}
	}
	return topics, payloads
}

func tpClient(b *testing.B, url, id string) paho.Client {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true).
		SetAutoReconnect(false).SetOrderMatters(false).SetWriteTimeout(30 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("connect %s: %v", id, tok.Error())
	}
	b.Cleanup(func() { c.Disconnect(100) })
	return c
}

// publishAll sends every batch at QoS 1 from tpPublishers clients, each
// keeping tpInflight batches unacknowledged by the broker.
func publishAll(b *testing.B, url string, topics []string, payloads [][]byte) {
	var wg sync.WaitGroup
	for p := range tpPublishers {
		c := tpClient(b, url, fmt.Sprintf("tp-pub-%d-%d", p, time.Now().UnixNano()))
		wg.Go(func() {
			sem := make(chan struct{}, tpInflight)
			for i := p; i < len(payloads); i += tpPublishers {
				sem <- struct{}{}
				tok := c.Publish(topics[i], 1, false, payloads[i])
				go func() { tok.WaitTimeout(time.Minute); <-sem }()
			}
			for range tpInflight {
				sem <- struct{}{}
			}
		})
	}
	wg.Wait()
}

// BenchmarkMQTTToAck measures the collector from MQTT to the end-to-end ack
// (durable, fsynced, in the readings log): 1,000 devices, batches of 100
// readings, Mosquitto on loopback, the gridedge-collector binary. The same
// batches first go to a subscriber that only decodes them: its rate is the
// ceiling the broker delivers on this machine. Run with
//
//	go test -run '^$' -bench MQTTToAck -benchtime 1x ./cloud/e2e/
//
// It reports readings/s acknowledged, the ceiling, and their ratio.
func BenchmarkMQTTToAck(b *testing.B) {
	const perDevice = 20 // 2,000,000 readings
	topics, payloads := tpBatches(b, perDevice)
	total := len(payloads) * tpPerBatch
	for range b.N {
		b.StopTimer()
		broker := mqtttest.Start(b, mqtttest.WithConfig("max_inflight_messages 0\nmax_queued_messages 0"))

		// The ceiling: a subscriber that decodes every batch.
		var decoded atomic.Int64
		doneCeil := make(chan time.Time, 1)
		sub := tpClient(b, broker.URL(), "tp-trivial")
		sub.Subscribe(topic.Filter(topic.Data), 1, func(_ paho.Client, m paho.Message) {
			bt, err := wire.DecodeBatch(m.Payload())
			if err == nil && decoded.Add(int64(len(bt.Readings))) == int64(total) {
				doneCeil <- time.Now()
			}
		}).WaitTimeout(10 * time.Second)
		start := time.Now()
		publishAll(b, broker.URL(), topics, payloads)
		var ceilEnd time.Time
		select {
		case ceilEnd = <-doneCeil:
		case <-time.After(5 * time.Minute):
			b.Fatalf("trivial subscriber got %d of %d readings", decoded.Load(), total)
		}
		ceiling := float64(total) / ceilEnd.Sub(start).Seconds()
		sub.Disconnect(100)

		// The collector: readings acknowledged end to end.
		c := startCollector(b, broker.URL(), b.TempDir())
		var acked atomic.Int64
		doneAck := make(chan time.Time, 1)
		ackSub := tpClient(b, broker.URL(), "tp-acks")
		ackSub.Subscribe(topic.Filter(topic.Ack), 1, func(_ paho.Client, m paho.Message) {
			a, err := wire.DecodeAck(m.Payload())
			if err != nil {
				return
			}
			var n int64
			for _, r := range a.Ranges {
				n += int64(r.Last - r.First + 1)
			}
			if acked.Add(n) == int64(total) {
				doneAck <- time.Now()
			}
		}).WaitTimeout(10 * time.Second)
		b.StartTimer()
		start = time.Now()
		publishAll(b, broker.URL(), topics, payloads)
		var ackEnd time.Time
		select {
		case ackEnd = <-doneAck:
		case <-time.After(10 * time.Minute):
			b.Fatalf("%d of %d readings acknowledged", acked.Load(), total)
		}
		b.StopTimer()
		rate := float64(total) / ackEnd.Sub(start).Seconds()
		b.ReportMetric(rate, "acked-readings/s")
		b.ReportMetric(ceiling, "ceiling-readings/s")
		b.ReportMetric(100*rate/ceiling, "%-of-ceiling")
		c.kill()
	}
}
