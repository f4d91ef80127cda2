package ingest

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/shared/topic"
	"github.com/gridedge/gridedge/shared/wire"
)

func TestPipelineCompletesInOrderAndStoresExactlyOnce(t *testing.T) {
	in, st, _ := newIngester(t)
	p := in.NewPipeline(4, 8)
	const devices, rounds = 10, 20
	var order []int
	var acks []*wire.Ack
	n := 0
	for r := 0; r < rounds; r++ {
		for d := 0; d < devices; d++ {
			dev := fmt.Sprintf("dev-%d", d)
			payload := batchBytes(t, dev, uint64(r%10)*5, 5) // rounds 10..19 resend 0..9
			if r == 3 && d == 3 {
				payload = []byte("garbage")
			}
			i := n
			n++
			p.Submit(Message{Topic: topic.For("s", dev, topic.Data), Payload: payload, Received: t0}, func(out Outcome, err error) {
				order = append(order, i) // only the completion goroutine touches order
				if err == nil {
					acks = append(acks, out.Ack)
				}
			})
		}
	}
	status, _ := wire.EncodeStatus(&wire.Status{DeviceId: "dev-1", Online: true})
	var statusErr error
	p.Submit(Message{Topic: topic.For("s", "dev-1", topic.Status), Payload: status, Received: t0}, func(_ Outcome, err error) {
		order = append(order, n)
		statusErr = err
	})
	p.Close()
	if len(order) != n+1 || statusErr != nil {
		t.Fatalf("%d completions for %d messages (status err %v)", len(order), n+1, statusErr)
	}
	for i, got := range order {
		if got != i {
			t.Fatalf("completion %d was message %d: not in submission order", i, got)
		}
	}
	if len(acks) != n-1 {
		t.Fatalf("%d acks, want %d (one garbage payload)", len(acks), n-1)
	}
	for d := 0; d < devices; d++ {
		info, _, _ := st.Device(fmt.Sprintf("dev-%d", d))
		if info.ReadingsStored != 50 {
			t.Fatalf("dev-%d: %d readings stored, want 50", d, info.ReadingsStored)
		}
	}
	if sts, _ := st.Statuses(); !sts["dev-1"].Online {
		t.Fatal("status not stored through the pipeline")
	}
}

// BenchmarkPipeline measures readings/s through the pipeline with fsync on,
// 1000 devices taking turns, batches of 100: parallel workers let Badger
// share fsyncs between devices' commits.
func BenchmarkPipeline(b *testing.B) {
	for _, workers := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("workers-%d", workers), func(b *testing.B) {
			st, err := store.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			in, err := New(st, prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			const perBatch, devices = 100, 1000
			msgs := make([]Message, b.N)
			for i := range msgs {
				dev := fmt.Sprintf("dev-%04d", i%devices)
				msgs[i] = Message{Topic: topic.For("site", dev, topic.Data), Payload: batchBytes(b, dev, uint64(i/devices)*perBatch, perBatch), Received: t0}
			}
			p := in.NewPipeline(workers, 4*workers)
			failed := 0
			b.ResetTimer()
			for _, m := range msgs {
				p.Submit(m, func(_ Outcome, err error) {
					if err != nil {
						failed++
					}
				})
			}
			p.Close()
			b.StopTimer()
			if failed > 0 {
				b.Fatalf("%d batches failed", failed)
			}
			b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "readings/s")
		})
	}
}
