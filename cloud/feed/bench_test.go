package feed_test

import (
	"fmt"
	"testing"

	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
)

// BenchmarkCommitResults measures what the feed adds to a worker commit:
// synced store batches of 1,000 window results each, with the feed off
// and on.
//
//	go test -run '^$' -bench CommitResults -benchtime 200x ./cloud/feed/
func BenchmarkCommitResults(b *testing.B) {
	out := window.Output{}
	for d := range 100 {
		for w := range 10 {
			out.Results = append(out.Results, result(fmt.Sprintf("meter-%03d", d), w, 1))
		}
	}
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("feed=%v", on), func(b *testing.B) {
			opts := []store.Option{}
			if on {
				opts = append(opts, store.WithFeed(store.FeedRetention{MaxBytes: 256 << 20}))
			}
			st, err := store.Open(b.TempDir(), opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			b.ResetTimer()
			for range b.N {
				bt := st.NewBatch(0)
				if err := bt.PutOutput(out); err != nil {
					b.Fatal(err)
				}
				if err := bt.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(out.Results)), "ns/result")
		})
	}
}
