package ingest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/shared/topic"
	"github.com/gridedge/gridedge/shared/wire"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func newIngester(t testing.TB) (*Ingester, *store.Store, *prometheus.Registry) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := prometheus.NewRegistry()
	in, err := New(st, reg)
	if err != nil {
		t.Fatal(err)
	}
	return in, st, reg
}

func batchBytes(t testing.TB, device string, first uint64, n int) []byte {
	t.Helper()
	b := &wire.Batch{DeviceId: device, SeqEpoch: 42, BootId: "b"}
	for i := 0; i < n; i++ {
		seq := first + uint64(i)
		b.Readings = append(b.Readings, &wire.Reading{
			Seq: seq, Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: float64(seq),
			WallNs: t0.Add(time.Duration(seq) * time.Second).UnixNano(), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED,
		})
	}
	out, err := wire.EncodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestHandleDataAcksEverySeqIncludingDuplicates(t *testing.T) {
	in, st, reg := newIngester(t)
	tp := topic.For("site1", "dev-1", topic.Data)
	if _, err := in.HandleData(tp, batchBytes(t, "dev-1", 1, 10), t0); err != nil {
		t.Fatal(err)
	}
	out, err := in.HandleData(tp, batchBytes(t, "dev-1", 6, 10), t0) // 6..10 are resends
	if err != nil {
		t.Fatal(err)
	}
	want := &wire.Ack{SchemaVersion: 1, DeviceId: "dev-1", SeqEpoch: 42, Ranges: []*wire.SeqRange{{First: 6, Last: 15}}, ContiguousThrough: 15}
	if !proto.Equal(out.Ack, want) {
		t.Fatalf("ack %v, want %v", out.Ack, want)
	}
	if out.Result.Stored != 5 || out.Result.Duplicates != 5 || out.Site != "site1" {
		t.Fatalf("outcome %+v", out)
	}
	info, _, _ := st.Device("dev-1")
	if info.ReadingsStored != 15 {
		t.Fatalf("readings stored %d, want 15", info.ReadingsStored)
	}
	if got := counter(t, reg, "gridedge_collector_readings_total", "outcome", "duplicate"); got != 5 {
		t.Fatalf("duplicate counter %v", got)
	}
}

func TestBadPayloadsAreDeadLetteredAndCounted(t *testing.T) {
	in, st, reg := newIngester(t)
	tp := topic.For("site1", "dev-1", topic.Data)
	wrongVersion := func() []byte {
		var b wire.Batch
		if err := proto.Unmarshal(batchBytes(t, "dev-1", 1, 1), &b); err != nil {
			t.Fatal(err)
		}
		b.SchemaVersion = 99
		out, _ := proto.Marshal(&b)
		return out
	}()
	invalid := func() []byte {
		var b wire.Batch
		_ = proto.Unmarshal(batchBytes(t, "dev-1", 1, 1), &b)
		b.Readings[0].Channel = "a/b"
		out, _ := proto.Marshal(&b)
		return out
	}()
	cases := []struct {
		name, topic, reason string
		payload             []byte
	}{
		{"garbage", tp, ReasonMalformed, []byte{0xff, 0xfe, 0x01, 0x02, 0x03}},
		{"schema version", tp, ReasonSchemaVersion, wrongVersion},
		{"device mismatch", tp, ReasonDeviceMismatch, batchBytes(t, "dev-2", 1, 3)},
		{"invalid content", tp, ReasonInvalid, invalid},
		{"bad topic", "gridedge/v1/site1/dev 1/data", ReasonBadTopic, batchBytes(t, "dev-1", 1, 3)},
	}
	for _, c := range cases {
		out, err := in.HandleData(c.topic, c.payload, t0)
		var rej *RejectError
		if !errors.As(err, &rej) || rej.Reason != c.reason || out.Ack != nil || out.DeadLetter != c.reason {
			t.Fatalf("%s: outcome %+v err %v, want rejection %q without ack", c.name, out, err, c.reason)
		}
		if got := counter(t, reg, "gridedge_collector_deadletters_total", "reason", c.reason); got != 1 {
			t.Fatalf("%s: counter %v, want 1", c.name, got)
		}
	}
	dls, err := st.DeadLetters(0)
	if err != nil || len(dls) != len(cases) {
		t.Fatalf("dead letters %d (%v), want %d", len(dls), err, len(cases))
	}
	for _, dl := range dls {
		if dl.Topic == "" || dl.Detail == "" || len(dl.Payload) == 0 || !dl.Received.Equal(t0) {
			t.Fatalf("dead letter lacks context: %+v", dl)
		}
	}
	// Good batches still go through, and nothing of the rejected ones was stored.
	if _, err := in.HandleData(tp, batchBytes(t, "dev-1", 1, 4), t0); err != nil {
		t.Fatal(err)
	}
	if info, _, _ := st.Device("dev-1"); info.ReadingsStored != 4 {
		t.Fatalf("readings stored %d, want 4", info.ReadingsStored)
	}
	if _, ok, _ := st.Device("dev-2"); ok {
		t.Fatal("a mismatched batch created device dev-2")
	}
}

func TestHandleStatus(t *testing.T) {
	in, st, _ := newIngester(t)
	p, _ := wire.EncodeStatus(&wire.Status{DeviceId: "dev-1", Online: true, TimeZone: "Europe/Paris"})
	if err := in.HandleStatus(topic.For("s", "dev-1", topic.Status), p, t0); err != nil {
		t.Fatal(err)
	}
	if err := in.HandleStatus(topic.For("s", "dev-9", topic.Status), p, t0); err == nil {
		t.Fatal("status of another device accepted")
	}
	sts, _ := st.Statuses()
	if len(sts) != 1 || !sts["dev-1"].Online || sts["dev-1"].Site != "s" {
		t.Fatalf("statuses %+v", sts)
	}
}

// BenchmarkIngest measures readings/s from wire bytes into the durable store,
// in batches of 100 readings, with fsync on every batch as in production
// (and without, to show what the fsync costs), for one device and for 1000
// devices taking turns.
func BenchmarkIngest(b *testing.B) {
	for _, c := range []struct {
		name    string
		sync    bool
		devices int
	}{{"fsync/1-device", true, 1}, {"nosync/1-device", false, 1}, {"fsync/1000-devices", true, 1000}} {
		b.Run(c.name, func(b *testing.B) {
			st, err := store.Open(b.TempDir(), store.WithSyncWrites(c.sync))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			in, err := New(st, prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			const perBatch = 100
			type msg struct {
				topic   string
				payload []byte
			}
			msgs := make([]msg, b.N)
			for i := range msgs {
				dev := fmt.Sprintf("dev-%04d", i%c.devices)
				first := uint64(i/c.devices) * perBatch
				msgs[i] = msg{topic.For("site", dev, topic.Data), batchBytes(b, dev, first, perBatch)}
			}
			b.ResetTimer()
			for _, m := range msgs {
				if _, err := in.HandleData(m.topic, m.payload, t0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "readings/s")
		})
	}
}
