package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkReplayLog measures how fast the windowing engine can read the
// ingest log back (the cost of catching up after a restart), in readings
// per second:
//
//	go test -run '^$' -bench ReplayLog ./cloud/store/
func BenchmarkReplayLog(b *testing.B) {
	s, err := Open(b.TempDir(), WithSyncWrites(false))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const devices, per = 100, 1000
	for d := range devices {
		if _, err := s.ApplyBatch("site", batch(fmt.Sprintf("dev-%03d", d), 1, 1, per, t0), t0); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	n := 0
	for b.Loop() {
		if err := s.ReplayLog(context.Background(), 0, func(e *LogEntry) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	if n != b.N*devices*per {
		b.Fatalf("replayed %d readings, want %d", n, b.N*devices*per)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "readings/s")
}
