package worker

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/intake"
	"github.com/gridedge/gridedge/cloud/readlog/local"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

// benchRecords encodes n batches of 100 readings over 100 devices, four
// series each, one reading a second per series.
type benchRecord struct{ key, value []byte }

func benchRecords(b *testing.B, n int) []benchRecord {
	b.Helper()
	out := make([]benchRecord, n)
	for i := range n {
		dev := fmt.Sprintf("dev-%03d", i%100)
		round := uint64(i / 100)
		batch := &wire.Batch{SchemaVersion: wire.SchemaVersion, DeviceId: dev, SeqEpoch: 1}
		for j := range uint64(100) {
			seq := round*100 + j + 1
			batch.Readings = append(batch.Readings, &wire.Reading{Seq: seq, Channel: []string{"mains", "sub1", "sub2", "sub3"}[seq%4],
				Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: float64(seq % 977), WallNs: t0.Add(time.Duration(seq/4) * time.Second).UnixNano(),
				TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED})
		}
		p, err := wire.EncodeBatch(batch)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = benchRecord{[]byte(dev), intake.AppendRecord(nil, intake.Record{Kind: intake.KindData, ReceivedNs: t0.Add(time.Hour).UnixNano(), Site: "s", Payload: p})}
	}
	return out
}

func benchWorker(b *testing.B, st *store.Store) *Worker {
	b.Helper()
	lg, err := local.Open(filepath.Join(b.TempDir(), "log"), local.WithPartitions(1), local.WithConsumers(Group), local.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lg.Close() })
	w, err := New(Config{Store: st, Log: lg, Pipelines: []window.Pipeline{minutePipeline()}, Now: func() time.Time { return t0.Add(time.Hour) },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	return w
}

func apply(b *testing.B, w *Worker, recs []benchRecord, from int64) {
	b.Helper()
	for i, rec := range recs {
		if err := w.process(from+int64(i), rec.key, rec.value); err != nil {
			b.Fatal(err)
		}
		w.next = from + int64(i) + 1
		if w.sinceSave >= 20_000 {
			if err := w.commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkResend measures what comparing resent readings with the stored
// ones costs: fresh readings, resends whose originals are in memory (open
// blocks) and resends whose originals are only in the store (after a
// restart), per reading.
func BenchmarkResend(b *testing.B) {
	const batches = 2000 // 200,000 readings
	recs := benchRecords(b, batches)
	open := func(b *testing.B) *store.Store {
		st, err := store.Open(filepath.Join(b.TempDir(), "store"), store.WithSync(false))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		return st
	}
	report := func(b *testing.B, w *Worker) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batches*100), "ns/reading")
		b.ReportMetric(0, "ns/op")
		_ = w
	}
	b.Run("fresh", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			w := benchWorker(b, open(b))
			b.StartTimer()
			apply(b, w, recs, 0)
		}
		report(b, nil)
	})
	b.Run("resend-in-memory", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			w := benchWorker(b, open(b))
			apply(b, w, recs, 0)
			b.StartTimer()
			apply(b, w, recs, batches)
			if w.c.Duplicates != batches*100 || w.c.Conflicts != 0 {
				b.Fatalf("duplicates %d conflicts %d", w.c.Duplicates, w.c.Conflicts)
			}
		}
		report(b, nil)
	})
	b.Run("resend-from-store", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			st := open(b)
			apply(b, benchWorker(b, st), recs, 0)
			w := benchWorker(b, st) // restored: no open blocks
			b.StartTimer()
			apply(b, w, recs, batches)
			if w.c.Duplicates != batches*100 || w.c.Conflicts != 0 {
				b.Fatalf("duplicates %d conflicts %d", w.c.Duplicates, w.c.Conflicts)
			}
		}
		report(b, nil)
	})
}
