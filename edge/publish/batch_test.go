package publish

import (
	"testing"

	"github.com/gridedge/gridedge/edge/buffer"
	"github.com/gridedge/gridedge/shared/wire"
)

func recs(boot string, epoch uint64, n int) []buffer.Record {
	out := make([]buffer.Record, n)
	for i := range out {
		out[i] = buffer.Record{SeqEpoch: epoch, Seq: uint64(i + 1), BootID: boot,
			Reading: &wire.Reading{Seq: uint64(i + 1), Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: 1234.5,
				WallNs: 1_700_000_000_000_000_000, MonoNs: 123456789, TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED}}
	}
	return out
}

func TestBatchLen(t *testing.T) {
	mixed := append(recs("a", 1, 3), recs("b", 1, 3)...)
	if n := batchLen(mixed, 100, 1<<20); n != 3 {
		t.Fatalf("boot split: %d, want 3", n)
	}
	epochs := append(recs("a", 1, 2), recs("a", 2, 2)...)
	if n := batchLen(epochs, 100, 1<<20); n != 2 {
		t.Fatalf("epoch split: %d, want 2", n)
	}
	if n := batchLen(recs("a", 1, 10), 4, 1<<20); n != 4 {
		t.Fatalf("max readings: %d, want 4", n)
	}
	// A reading is ~40 bytes encoded: 1024 bytes hold well under 100.
	n := batchLen(recs("a", 1, 100), 100, 1024)
	if n < 5 || n >= 100 {
		t.Fatalf("max bytes: %d readings in 1024 bytes", n)
	}
	b := &wire.Batch{DeviceId: "dev-1", BootId: "a", SentBootId: "a", SeqEpoch: 1, AgentVersion: "v1.2.3"}
	for _, r := range recs("a", 1, n) {
		b.Readings = append(b.Readings, r.Reading)
	}
	if payload, _ := wire.EncodeBatch(b); len(payload) > 1024 {
		t.Fatalf("batch of %d readings is %d bytes, limit 1024", n, len(payload))
	}
	if n := batchLen(nil, 10, 10); n != 0 {
		t.Fatalf("empty: %d", n)
	}
	if n := batchLen(recs("a", 1, 3), 10, 1); n != 1 {
		t.Fatalf("oversized reading must still go alone: %d", n)
	}
}
