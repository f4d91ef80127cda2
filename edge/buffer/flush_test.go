package buffer

import (
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/gridedge/gridedge/shared/wire"
)

// TestReadingsSurviveFlushesAndCompaction appends enough readings to force
// many memtable flushes and compactions into L1, reopens the store, and
// checks every reading reads back intact. Sizes are scaled down (1 MB
// memtables and tables) with the ratios of BadgerOptions kept, so the test
// is quick even under qemu-user. On 32-bit platforms this is what catches
// ristretto's z.Allocator bug (it reuses memory once it grows past its first
// buffer, so Badger writes corrupt tables and compaction drops their keys):
// BadgerOptions must keep every table within the allocator's first buffer.
func TestReadingsSurviveFlushesAndCompaction(t *testing.T) {
	forEachBackend(t, testReadingsSurviveFlushesAndCompaction)
}

func testReadingsSurviveFlushesAndCompaction(t *testing.T, bk Backend) {
	root := t.TempDir()
	dir, state := filepath.Join(root, "buf"), filepath.Join(root, "state")
	scale := func(o badger.Options) badger.Options {
		return o.WithMemTableSize(o.MemTableSize / 4).WithBaseTableSize(o.BaseTableSize / 4).
			WithBaseLevelSize(o.BaseLevelSize / 4)
	}
	b := openOn(t, bk, dir, state, WithBadgerTuning(scale))
	const n = 60_000
	rs := make([]*wire.Reading, 0, 500)
	for i := 0; i < n; i++ {
		rs = append(rs, &wire.Reading{Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: float64(i),
			WallNs: int64(i) * 1e9, MonoNs: int64(i), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED})
		if len(rs) == cap(rs) {
			if err := b.Append("boot", rs...); err != nil {
				t.Fatal(err)
			}
			rs = rs[:0]
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openOn(t, bk, dir, state, WithBadgerTuning(scale))
	defer b.Close()
	if b.Len() != n {
		t.Fatalf("after reopen %d readings, want %d", b.Len(), n)
	}
	var after uint64
	for got := 0; got < n; {
		recs, err := b.Read(after, 5000)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			t.Fatalf("only %d of %d readings readable", got, n)
		}
		for _, r := range recs {
			if r.Seq != uint64(got+1) || r.Reading.Value != float64(got) || r.Reading.WallNs != int64(got)*1e9 {
				t.Fatalf("reading %d: seq %d value %v", got, r.Seq, r.Reading.Value)
			}
			got++
		}
		after = recs[len(recs)-1].Seq
	}
}
