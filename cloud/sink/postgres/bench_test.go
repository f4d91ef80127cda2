package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/feed"
	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/cloud/sink/postgres"
	"github.com/gridedge/gridedge/cloud/sink/postgres/pgtest"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
)

// BenchmarkSinkRows measures rows written per second into PostgreSQL: each
// iteration commits 50,000 rows (500 devices × 100 one-minute windows, as
// 100 worker commits per partition: window results, or raw readings) to a
// store's feed and times the sink from start until it has written them
// all.
//
//	go test -run '^$' -bench SinkRows -benchtime 3x ./cloud/sink/postgres/
func BenchmarkSinkRows(b *testing.B) {
	pg := pgtest.Start(b)
	dbs := 0
	b.Run("results", func(b *testing.B) { benchSink(b, pg, &dbs, false) })
	b.Run("readings", func(b *testing.B) { benchSink(b, pg, &dbs, true) })
}

func benchSink(b *testing.B, pg *pgtest.Server, dbs *int, readings bool) {
	const devices, windows = 500, 100
	var rows float64
	var elapsed time.Duration
	for range b.N {
		b.StopTimer()
		*dbs++
		url := pg.CreateDB(fmt.Sprintf("bench%d", *dbs))
		st, err := store.Open(b.TempDir(), store.WithFeed(store.FeedRetention{}), store.WithFeedReadings(), store.WithSync(false))
		if err != nil {
			b.Fatal(err)
		}
		src := feed.NewLocal(st, parts)
		var opts []postgres.Option
		if readings {
			opts = append(opts, postgres.WithReadings(100*366*24*time.Hour))
		}
		// Positions on the empty store, so every row comes through the feed.
		first := run(b, src, url, opts...)
		first.caughtUp(b, src)
		first.stop()
		for w := range windows {
			outs := make([]window.Output, parts)
			raws := make([][]store.RawReading, parts)
			for d := range devices {
				dev := fmt.Sprintf("meter-%04d", d)
				p := readlog.PartitionFor([]byte(dev), parts)
				if readings {
					raws[p] = append(raws[p], store.RawReading{Device: dev, Channel: "mains", Quantity: "active_power",
						Time: time.Now().Add(time.Duration(w-windows) * time.Second), Value: float64(d + w), TimeQuality: "synced",
						SeqEpoch: 1, Seq: uint64(w), Received: time.Now()})
					continue
				}
				outs[p].Results = append(outs[p].Results, result(dev, w, 1, float64(d+w)))
			}
			for p := range parts {
				bt := st.NewBatch(p)
				if err := bt.PutOutput(outs[p]); err != nil {
					b.Fatal(err)
				}
				if err := bt.FeedReadings(raws[p]); err != nil {
					b.Fatal(err)
				}
				if err := bt.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StartTimer()
		t0 := time.Now()
		r := run(b, src, url, opts...)
		r.caughtUp(b, src)
		elapsed += time.Since(t0)
		b.StopTimer()
		r.stop()
		st.Close()
		rows += devices * windows
	}
	b.ReportMetric(rows/elapsed.Seconds(), "rows/s")
}
