package readlogtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/readlog"
)

// Suite describes the implementation under test.
type Suite struct {
	// Partitions is the partition count of the logs New makes (at least 2).
	Partitions int
	// MaxRecordBytes is their largest accepted key + value.
	MaxRecordBytes int
	// New makes an empty log and returns a function opening it; the
	// function is called again after Close to reopen the same log.
	New func(t *testing.T) (open func() readlog.Log)
}

// Run runs every behaviour as a subtest.
func Run(t *testing.T, s Suite) {
	t.Run("AppendsAreAckedInOrderAndReadBack", func(t *testing.T) { appendsAckedInOrder(t, s) })
	t.Run("OpenAtEveryOffsetAndWaitForNew", func(t *testing.T) { openAtOffsets(t, s) })
	t.Run("BadInputGetsClearErrors", func(t *testing.T) { badInput(t, s) })
	t.Run("CloseCompletesEveryAppend", func(t *testing.T) { closeCompletes(t, s) })
}

func payload(id string, n int) []byte {
	v := append([]byte(id), ':')
	for len(v) < n {
		v = append(v, byte('a'+len(v)%26))
	}
	return v
}

type ack struct {
	off int64
	err error
}

// AppendWait appends and waits for the record's acknowledgement.
func AppendWait(l readlog.Log, p int, key, val []byte) (int64, error) {
	ch := make(chan ack, 1)
	if err := l.Append(context.Background(), p, key, val, func(off int64, err error) { ch <- ack{off, err} }); err != nil {
		return -1, err
	}
	a := <-ch
	return a.off, a.err
}

// ReadRange reads partition p from offset from up to (not including) to,
// checking offsets are contiguous; it returns copies of keys and values.
func ReadRange(t testing.TB, l readlog.Log, p int, from, to int64) (keys, values []string) {
	t.Helper()
	r, err := l.Open(p, from)
	if err != nil {
		t.Fatalf("open partition %d at %d: %v", p, from, err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for next := from; next < to; {
		recs, err := r.Fetch(ctx, 97)
		if err != nil {
			t.Fatalf("fetch partition %d at %d (want up to %d): %v", p, next, to, err)
		}
		for _, x := range recs {
			if x.Offset != next || x.Partition != p {
				t.Fatalf("read partition %d offset %d, want partition %d offset %d", x.Partition, x.Offset, p, next)
			}
			keys, values = append(keys, string(x.Key)), append(values, string(x.Value))
			next++
		}
	}
	return keys, values
}

func appendsAckedInOrder(t *testing.T, s Suite) {
	open := s.New(t)
	l := open()
	const appenders, each = 6, 60
	var mu sync.Mutex
	acked := make([]map[int64]string, s.Partitions)
	last := make([]int64, s.Partitions)
	for p := range acked {
		acked[p], last[p] = map[int64]string{}, -1
	}
	errs := make(chan error, appenders*each)
	var wg sync.WaitGroup
	for g := range appenders {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("dev-%d-%d", g, i)
				p := readlog.PartitionFor([]byte(id), s.Partitions)
				wg.Add(1)
				err := l.Append(context.Background(), p, []byte(id), payload(id, 300), func(off int64, err error) {
					defer wg.Done()
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					defer mu.Unlock()
					if off <= last[p] {
						errs <- fmt.Errorf("partition %d: ack of offset %d after %d", p, off, last[p])
					}
					last[p] = off
					if prev, dup := acked[p][off]; dup {
						errs <- fmt.Errorf("partition %d offset %d acknowledged for %s and %s", p, off, prev, id)
					}
					acked[p][off] = id
				})
				if err != nil {
					wg.Done()
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	check := func(l readlog.Log) {
		for p, m := range acked {
			keys, values := ReadRange(t, l, p, 0, int64(len(m)))
			for off, id := range m {
				if keys[off] != id || values[off] != string(payload(id, 300)) {
					t.Fatalf("partition %d offset %d holds key %q, acknowledged %q", p, off, keys[off], id)
				}
			}
		}
	}
	for _, m := range acked {
		total += len(m)
	}
	if total != appenders*each {
		t.Fatalf("%d appends acknowledged, want %d", total, appenders*each)
	}
	check(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = open()
	defer l.Close()
	if l.Partitions() != s.Partitions {
		t.Fatalf("reopened with %d partitions, want %d", l.Partitions(), s.Partitions)
	}
	check(l)
	for p, m := range acked {
		off, err := AppendWait(l, p, []byte("k"), []byte("after reopen"))
		if err != nil || off != int64(len(m)) {
			t.Fatalf("partition %d: first append after reopen at offset %d (%v), want %d", p, off, err, len(m))
		}
	}
}

func openAtOffsets(t *testing.T, s Suite) {
	l := s.New(t)()
	defer l.Close()
	const n = 120
	for i := range n {
		if off, err := AppendWait(l, 0, []byte("dev"), payload(fmt.Sprint(i), 50+i)); err != nil || off != int64(i) {
			t.Fatalf("append %d: offset %d, %v", i, off, err)
		}
	}
	for _, from := range []int64{0, 1, 17, 64, 119} {
		_, values := ReadRange(t, l, 0, from, n)
		if len(values) != int(n-from) || !bytes.HasPrefix([]byte(values[0]), []byte(fmt.Sprint(from)+":")) {
			t.Fatalf("open at %d read %d records starting %.10q", from, len(values), values[0])
		}
	}
	r, err := l.Open(0, n)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if recs, err := r.Fetch(ctx, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("fetch at the end with a cancelled context: %d records, %v", len(recs), err)
	}
	got := make(chan []readlog.Record, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		recs, err := r.Fetch(ctx, 10)
		if err != nil {
			t.Error(err)
		}
		got <- recs
	}()
	if _, err := AppendWait(l, 0, []byte("dev"), []byte("new")); err != nil {
		t.Fatal(err)
	}
	if recs := <-got; len(recs) != 1 || recs[0].Offset != n || string(recs[0].Value) != "new" || string(recs[0].Key) != "dev" {
		t.Fatalf("waiting fetch returned %+v", recs)
	}
}

func badInput(t *testing.T, s Suite) {
	l := s.New(t)()
	ctx := context.Background()
	nop := func(int64, error) {}
	if _, err := AppendWait(l, 0, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"partition out of range": l.Append(ctx, s.Partitions, nil, []byte("v"), nop),
		"negative partition":     l.Append(ctx, -1, nil, []byte("v"), nop),
		"too large":              l.Append(ctx, 0, []byte("k"), make([]byte, s.MaxRecordBytes), nop),
		"no callback":            l.Append(ctx, 0, nil, []byte("v"), nil),
		"commit negative":        l.Commit("workers", 0, -1),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := l.Open(0, 2); err == nil {
		t.Error("open beyond the end: no error")
	}
	if _, err := l.Open(s.Partitions, 0); err == nil {
		t.Error("open of a missing partition: no error")
	}
	if err := l.Commit("workers", 0, 1); err != nil {
		t.Errorf("commit of a consumed offset: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, 0, nil, []byte("v"), nop); !errors.Is(err, readlog.ErrClosed) {
		t.Errorf("append after close: %v, want ErrClosed", err)
	}
	if _, err := l.Open(0, 0); !errors.Is(err, readlog.ErrClosed) {
		t.Errorf("open after close: %v, want ErrClosed", err)
	}
}

func closeCompletes(t *testing.T, s Suite) {
	open := s.New(t)
	l := open()
	var mu sync.Mutex
	stored := map[int64]string{}
	var calls sync.WaitGroup
	for i := range 300 {
		id := fmt.Sprint(i)
		calls.Add(1)
		err := l.Append(context.Background(), 1, nil, payload(id, 200), func(off int64, err error) {
			defer calls.Done()
			switch {
			case err == nil:
				mu.Lock()
				stored[off] = id
				mu.Unlock()
			case !errors.Is(err, readlog.ErrClosed):
				t.Error(err)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { calls.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("callbacks still pending 20 s after Close returned")
	}
	l = open()
	defer l.Close()
	_, values := ReadRange(t, l, 1, 0, int64(len(stored)))
	for off, id := range stored {
		if values[off] != string(payload(id, 200)) {
			t.Fatalf("acknowledged offset %d holds %.20q, want record %s", off, values[off], id)
		}
	}
}
