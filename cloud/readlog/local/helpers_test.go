package local

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/readlog"
)

func quiet() Option { return WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))) }

func openLog(t testing.TB, dir string, opts ...Option) *Log {
	t.Helper()
	l, err := Open(dir, append([]Option{quiet()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// value returns a deterministic payload of n bytes for record id.
func value(id string, n int) []byte {
	v := make([]byte, 0, n)
	v = append(v, id...)
	v = append(v, ':')
	for len(v) < n {
		v = append(v, byte('a'+len(v)%26))
	}
	return v[:max(n, len(id)+1)]
}

type result struct {
	off int64
	err error
}

// appendWait appends and waits for the record's acknowledgement.
func appendWait(t testing.TB, l *Log, p int, key, val []byte) (int64, error) {
	t.Helper()
	ch := make(chan result, 1)
	if err := l.Append(context.Background(), p, key, val, func(off int64, err error) { ch <- result{off, err} }); err != nil {
		return -1, err
	}
	r := <-ch
	return r.off, r.err
}

func mustAppend(t testing.TB, l *Log, p int, key, val []byte) int64 {
	t.Helper()
	off, err := appendWait(t, l, p, key, val)
	if err != nil {
		t.Fatal(err)
	}
	return off
}

// rec is a copied record.
type rec struct {
	off        int64
	key, value string
}

// readRange reads partition p from offset from up to (not including) to.
func readRange(t testing.TB, l *Log, p int, from, to int64) []rec {
	t.Helper()
	r, err := l.Open(p, from)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []rec
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for next := from; next < to; {
		recs, err := r.Fetch(ctx, 97)
		if err != nil {
			t.Fatalf("fetch at %d (want up to %d): %v", next, to, err)
		}
		for _, x := range recs {
			if x.Offset != next {
				t.Fatalf("read offset %d, want %d", x.Offset, next)
			}
			if x.Partition != p {
				t.Fatalf("record of partition %d read from %d", x.Partition, p)
			}
			out = append(out, rec{x.Offset, string(x.Key), string(x.Value)})
			next++
		}
	}
	return out
}

// end returns partition p's end offset.
func end(l *Log, p int) int64 { return l.Stats().Partitions[p].End }

// ackLog collects acknowledgements from concurrent appenders.
type ackLog struct {
	mu   sync.Mutex
	acks map[int]map[int64]string // partition -> offset -> value id
}

func (a *ackLog) add(p int, off int64, id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.acks == nil {
		a.acks = map[int]map[int64]string{}
	}
	if a.acks[p] == nil {
		a.acks[p] = map[int64]string{}
	}
	if prev, ok := a.acks[p][off]; ok {
		return fmt.Errorf("offset %d of partition %d acknowledged twice (%s, %s)", off, p, prev, id)
	}
	a.acks[p][off] = id
	return nil
}

// checkAcked verifies every acknowledged record is stored at its offset.
func checkAcked(t *testing.T, l *Log, acks map[int]map[int64]string, size int) {
	t.Helper()
	for p, m := range acks {
		recs := readRange(t, l, p, 0, end(l, p))
		for off, id := range m {
			if off >= int64(len(recs)) {
				t.Fatalf("partition %d: acknowledged offset %d missing (end %d)", p, off, len(recs))
			}
			if want := value(id, size); !bytes.Equal([]byte(recs[off].value), want) {
				t.Fatalf("partition %d offset %d holds %.20q, want %.20q", p, off, recs[off].value, want)
			}
		}
	}
}

var _ readlog.Log = (*Log)(nil)
