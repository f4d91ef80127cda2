package local

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchRecord is a batch of ~100 readings as the collector appends it.
const benchRecord = 1800

func reportAppend(b *testing.B, l *Log, records int64, elapsed time.Duration) {
	var syncs int64
	for _, p := range l.Stats().Partitions {
		syncs += p.Syncs
	}
	s := elapsed.Seconds()
	b.ReportMetric(float64(records)/s, "records/s")
	b.ReportMetric(float64(records)*benchRecord/s/1e6, "MB/s")
	b.ReportMetric(float64(records)*100/s, "readings/s")
	if syncs > 0 {
		b.ReportMetric(float64(records)/float64(syncs), "records/fsync")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkAppend: N appenders, each appending and waiting for its
// acknowledgement before the next, over 2 partitions, fsync on.
func BenchmarkAppend(b *testing.B) {
	for _, appenders := range []int{1, 4, 64} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			l := openLog(b, b.TempDir(), WithPartitions(2))
			val := value("bench", benchRecord)
			var next atomic.Int64
			start := time.Now()
			var wg sync.WaitGroup
			for g := range appenders {
				wg.Go(func() {
					done := make(chan error, 1)
					key := []byte(fmt.Sprintf("dev-%d", g))
					for next.Add(1) <= int64(b.N) {
						if err := l.Append(context.Background(), g%2, key, val, func(_ int64, err error) { done <- err }); err != nil {
							b.Error(err)
							return
						}
						if err := <-done; err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			reportAppend(b, l, int64(b.N), time.Since(start))
		})
	}
}

// BenchmarkAppendPipelined: one goroutine appends without waiting (as the
// collector's intake does, acking each batch from its callback), bounded by
// the in-flight limit, over 2 partitions, fsync on.
func BenchmarkAppendPipelined(b *testing.B) {
	l := openLog(b, b.TempDir(), WithPartitions(2))
	val := value("bench", benchRecord)
	var wg sync.WaitGroup
	wg.Add(b.N)
	done := func(_ int64, err error) {
		if err != nil {
			b.Error(err)
		}
		wg.Done()
	}
	start := time.Now()
	for i := range b.N {
		if err := l.Append(context.Background(), i%2, []byte("dev"), val, done); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	reportAppend(b, l, int64(b.N), time.Since(start))
}

// BenchmarkFetch reads durable records (page-cache hot) in Fetches of 500.
func BenchmarkFetch(b *testing.B) {
	const prefill = 20000
	l := openLog(b, b.TempDir(), WithPartitions(1))
	val := value("bench", benchRecord)
	var wg sync.WaitGroup
	wg.Add(prefill)
	for range prefill {
		if err := l.Append(context.Background(), 0, []byte("dev"), val, func(_ int64, err error) { wg.Done() }); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.ResetTimer()
	start := time.Now()
	read := 0
	for read < b.N {
		r, err := l.Open(0, 0)
		if err != nil {
			b.Fatal(err)
		}
		for n := 0; n < prefill && read < b.N; {
			recs, err := r.Fetch(context.Background(), 500)
			if err != nil {
				b.Fatal(err)
			}
			n += len(recs)
			read += len(recs)
		}
		r.Close()
	}
	s := time.Since(start).Seconds()
	b.ReportMetric(float64(read)/s, "records/s")
	b.ReportMetric(float64(read)*benchRecord/s/1e6, "MB/s")
	b.ReportMetric(0, "ns/op")
}
