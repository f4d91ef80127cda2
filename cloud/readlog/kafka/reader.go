package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gridedge/gridedge/cloud/readlog"
)

// Reader consumes one partition directly (outside any group) from the
// offset it was opened at. It is not safe for concurrent use.
type Reader struct {
	l    *Log
	p    int
	cl   *kgo.Client
	next int64
	recs []readlog.Record
	gap  error // a trim found inside the last poll, returned by the next Fetch

	closeOnce sync.Once
}

var _ readlog.Reader = (*Reader)(nil)

// Open returns a reader of partition p positioned at from. from below the
// partition's first retained offset gives a *readlog.TrimmedError; from
// beyond its end is an error.
func (l *Log) Open(p int, from int64) (readlog.Reader, error) {
	if l.closed.Load() {
		return nil, readlog.ErrClosed
	}
	if p < 0 || p >= l.n {
		return nil, fmt.Errorf("readlog/kafka: partition %d out of range [0,%d)", p, l.n)
	}
	start, end, err := l.Offsets(context.Background(), p)
	if err != nil {
		return nil, err
	}
	if from < start {
		return nil, &readlog.TrimmedError{Partition: p, Requested: from, Available: start}
	}
	if from > end {
		return nil, fmt.Errorf("readlog/kafka: open partition %d at %d: beyond its end %d", p, from, end)
	}
	base, err := l.o.clientOpts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(base,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{l.o.topic: {int32(p): kgo.NewOffset().At(from)}}),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()), // a trimmed offset is an error, never a silent skip
		kgo.FetchMaxBytes(int32(l.o.fetchBytes)),
		kgo.FetchMaxPartitionBytes(int32(l.o.fetchBytes)),
	)...)
	if err != nil {
		return nil, fmt.Errorf("readlog/kafka: reader of partition %d: %w", p, err)
	}
	r := &Reader{l: l, p: p, cl: cl, next: from}
	l.mu.Lock()
	l.readers[r] = struct{}{}
	l.mu.Unlock()
	return r, nil
}

// Fetch waits for records at the reader's position and returns up to max
// of them, in offset order.
func (r *Reader) Fetch(ctx context.Context, max int) ([]readlog.Record, error) {
	if r.gap != nil {
		err := r.gap
		r.gap = nil
		return nil, err
	}
	if max <= 0 {
		max = 1
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fs := r.cl.PollRecords(ctx, max)
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if ferr == nil {
				ferr = err
			}
		})
		r.recs = r.recs[:0]
		fs.EachRecord(func(k *kgo.Record) {
			if r.gap != nil {
				return
			}
			if k.Offset != r.next {
				if k.Offset > r.next {
					r.gap = &readlog.TrimmedError{Partition: r.p, Requested: r.next, Available: k.Offset}
				}
				return // below: already returned (cannot happen with a direct consumer)
			}
			r.recs = append(r.recs, readlog.Record{Partition: r.p, Offset: k.Offset, Key: k.Key, Value: k.Value, Time: k.Timestamp})
			r.next++
		})
		if len(r.recs) > 0 {
			return r.recs, nil
		}
		if r.gap != nil {
			err := r.gap
			r.gap = nil
			return nil, err
		}
		switch {
		case ferr == nil:
			continue
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(ferr, kgo.ErrClientClosed):
			return nil, readlog.ErrClosed
		case errors.Is(ferr, kerr.OffsetOutOfRange):
			start, _, err := r.l.Offsets(ctx, r.p)
			if err != nil {
				return nil, fmt.Errorf("readlog/kafka: partition %d: offset %d out of range: %w", r.p, r.next, err)
			}
			return nil, &readlog.TrimmedError{Partition: r.p, Requested: r.next, Available: start}
		default:
			return nil, fmt.Errorf("readlog/kafka: fetch partition %d at %d: %w", r.p, r.next, ferr)
		}
	}
}

// Close closes the reader's client.
func (r *Reader) Close() error {
	r.closeOnce.Do(func() {
		r.l.mu.Lock()
		delete(r.l.readers, r)
		r.l.mu.Unlock()
		r.cl.Close()
	})
	return nil
}
