package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gridedge/gridedge/cloud/readlog"
)

// Follower reads committed records of several topics' partitions, each
// from its own position (a sink's stored cursors), outside any group. Not
// safe for concurrent use.
type Follower struct {
	cl *kgo.Client
}

// Follow starts a read_committed consumer of every partition of
// positions (topic → partition → next offset). A position below a
// partition's first retained offset starts at that offset (retention
// deleted the rest).
func (l *Log) Follow(positions map[string]map[int]int64) (*Follower, error) {
	if l.closed.Load() {
		return nil, readlog.ErrClosed
	}
	base, err := l.o.clientOpts()
	if err != nil {
		return nil, err
	}
	ps := map[string]map[int32]kgo.Offset{}
	for t, m := range positions {
		ps[t] = map[int32]kgo.Offset{}
		for p, at := range m {
			ps[t][int32(p)] = kgo.NewOffset().At(at)
		}
	}
	cl, err := kgo.NewClient(append(base,
		kgo.ConsumePartitions(ps),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(int32(l.o.fetchBytes)),
		kgo.FetchMaxPartitionBytes(int32(l.o.fetchBytes)),
	)...)
	if err != nil {
		return nil, fmt.Errorf("readlog/kafka: follower: %w", err)
	}
	return &Follower{cl: cl}, nil
}

// Poll waits for committed records and returns up to max of them, in
// offset order per partition. Records stay valid until the next Poll.
func (f *Follower) Poll(ctx context.Context, max int) ([]*kgo.Record, error) {
	for {
		fs := f.cl.PollRecords(ctx, max)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if ferr == nil {
				ferr = err
			}
		})
		if recs := fs.Records(); len(recs) > 0 {
			return recs, nil
		}
		if errors.Is(ferr, kgo.ErrClientClosed) {
			return nil, readlog.ErrClosed
		}
		if ferr != nil {
			return nil, fmt.Errorf("readlog/kafka: follow: %w", ferr)
		}
	}
}

// Close closes the follower's client.
func (f *Follower) Close() { f.cl.Close() }
