package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/feed"
	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/cloud/sink/postgres/pgtest"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
)

// BenchmarkSinkRows measures rows written per second into PostgreSQL: each
// iteration commits 50,000 window results (500 devices × 100 one-minute
// windows, as 100 worker commits per partition) to a store's feed and
// times the sink from start until it has written them all.
//
//	go test -run '^$' -bench SinkRows -benchtime 3x ./cloud/sink/postgres/
func BenchmarkSinkRows(b *testing.B) {
	pg := pgtest.Start(b)
	const devices, windows = 500, 100
	var rows float64
	var elapsed time.Duration
	for i := range b.N {
		b.StopTimer()
		url := pg.CreateDB(fmt.Sprintf("bench%d", i))
		st := openStore(b, store.FeedRetention{})
		src := feed.NewLocal(st, parts)
		// Positions on the empty store, so every row comes through the feed.
		first := run(b, src, url)
		first.caughtUp(b, src)
		first.stop()
		for w := range windows {
			outs := make([]window.Output, parts)
			for d := range devices {
				dev := fmt.Sprintf("meter-%04d", d)
				p := readlog.PartitionFor([]byte(dev), parts)
				outs[p].Results = append(outs[p].Results, result(dev, w, 1, float64(d+w)))
			}
			for p := range parts {
				bt := st.NewBatch(p)
				if err := bt.PutOutput(outs[p]); err != nil {
					b.Fatal(err)
				}
				if err := bt.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StartTimer()
		t0 := time.Now()
		r := run(b, src, url)
		r.caughtUp(b, src)
		elapsed += time.Since(t0)
		b.StopTimer()
		r.stop()
		rows += devices * windows
	}
	b.ReportMetric(rows/elapsed.Seconds(), "rows/s")
}
