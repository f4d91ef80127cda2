package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/readlog"
)

func TestConcurrentAppendsAreAckedInOrderAndReadBack(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, WithPartitions(3), WithSegmentBytes(16<<10))
	const appenders, each, size = 8, 150, 700
	var acks ackLog
	var mu sync.Mutex
	lastAck := map[int]int64{0: -1, 1: -1, 2: -1}
	var wg sync.WaitGroup
	errs := make(chan error, appenders*each)
	for g := range appenders {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("g%d-%d", g, i)
				p := readlog.PartitionFor([]byte(id), 3)
				wg.Add(1)
				err := l.Append(context.Background(), p, []byte(id), value(id, size), func(off int64, err error) {
					defer wg.Done()
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					if off <= lastAck[p] {
						errs <- fmt.Errorf("partition %d: ack of %d after %d", p, off, lastAck[p])
					}
					lastAck[p] = off
					mu.Unlock()
					if err := acks.add(p, off, id); err != nil {
						errs <- err
					}
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
	for p := range 3 {
		n := int64(len(acks.acks[p]))
		total += int(n)
		st := l.Stats().Partitions[p]
		if st.End != n || st.Durable != n || st.Start != 0 {
			t.Fatalf("partition %d stats %+v, want end = durable = %d", p, st, n)
		}
		if st.Segments < 2 {
			t.Fatalf("partition %d: %d segments, want rolls at 16 KiB", p, st.Segments)
		}
		recs := readRange(t, l, p, 0, n)
		for _, r := range recs {
			if acks.acks[p][r.off] != r.key {
				t.Fatalf("partition %d offset %d holds key %s, acked %s", p, r.off, r.key, acks.acks[p][r.off])
			}
		}
	}
	if total != appenders*each {
		t.Fatalf("%d records acknowledged, want %d", total, appenders*each)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir)
	if l2.Partitions() != 3 {
		t.Fatalf("reopened with %d partitions", l2.Partitions())
	}
	checkAcked(t, l2, acks.acks, size)
	for p := range 3 {
		if got := mustAppend(t, l2, p, []byte("k"), []byte("after reopen")); got != int64(len(acks.acks[p])) {
			t.Fatalf("partition %d: first offset after reopen %d, want %d", p, got, len(acks.acks[p]))
		}
	}
}

func TestOpenSeeksToEveryOffset(t *testing.T) {
	l := openLog(t, t.TempDir(), WithPartitions(1), WithSegmentBytes(8<<10))
	l.o.indexInterval = 1024 // several index entries per segment
	const n = 300
	for i := range n {
		mustAppend(t, l, 0, []byte("dev"), value(fmt.Sprint(i), 100+i%200))
	}
	for _, from := range []int64{0, 1, 17, 63, 64, 150, 298, 299} {
		recs := readRange(t, l, 0, from, n)
		if len(recs) != int(n-from) || recs[0].value[:len(fmt.Sprint(from))+1] != fmt.Sprint(from)+":" {
			t.Fatalf("open at %d read %d records starting %.10q", from, len(recs), recs[0].value)
		}
	}
	// At the end: nothing to read yet (a cancelled context returns at
	// once), then a new record arrives and a waiting Fetch returns it.
	r, err := l.Open(0, n)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if recs, err := r.Fetch(ctx, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("fetch at the end gave %d records, %v", len(recs), err)
	}
	got := make(chan []readlog.Record, 1)
	go func() {
		recs, err := r.Fetch(context.Background(), 10)
		if err != nil {
			t.Error(err)
		}
		got <- recs
	}()
	mustAppend(t, l, 0, []byte("dev"), []byte("new"))
	if recs := <-got; len(recs) != 1 || recs[0].Offset != n || string(recs[0].Value) != "new" {
		t.Fatalf("waiting fetch returned %+v", recs)
	}
}

func TestBadInputGetsClearErrors(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, WithPartitions(2), WithConsumers("workers"), WithMaxRecordBytes(1000))
	ctx := context.Background()
	nop := func(int64, error) {}
	mustAppend(t, l, 0, []byte("k"), []byte("v"))
	checks := []struct {
		name string
		err  error
	}{
		{"partition out of range", l.Append(ctx, 2, nil, []byte("v"), nop)},
		{"negative partition", l.Append(ctx, -1, nil, []byte("v"), nop)},
		{"too large", l.Append(ctx, 0, []byte("k"), make([]byte, 1000), nop)},
		{"no callback", l.Append(ctx, 0, nil, []byte("v"), nil)},
		{"unknown group", l.Commit("sinks", 0, 1)},
		{"commit beyond end", l.Commit("workers", 0, 2)},
		{"commit negative", l.Commit("workers", 0, -1)},
	}
	for _, c := range checks {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	if err := l.Append(ctx, 0, []byte("k"), make([]byte, 1000), nop); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized append: %v, want ErrTooLarge", err)
	}
	if _, err := l.Open(0, 2); err == nil {
		t.Error("open beyond the end: no error")
	}
	if _, err := l.Open(5, 0); err == nil {
		t.Error("open of a missing partition: no error")
	}
	if _, err := Open(dir, quiet()); err == nil {
		t.Error("second open of a locked log: no error")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, quiet(), WithPartitions(4)); err == nil {
		t.Error("reopen with another partition count: no error")
	}
	if err := l.Append(ctx, 0, nil, []byte("v"), nop); !errors.Is(err, readlog.ErrClosed) {
		t.Errorf("append after close: %v", err)
	}
	if _, err := l.Open(0, 0); !errors.Is(err, readlog.ErrClosed) {
		t.Errorf("open after close: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "0", "junk.log"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, quiet()); err == nil {
		t.Error("open with a stray segment name: no error")
	}
}

func TestAppendBlocksAtTheInflightBound(t *testing.T) {
	l := openLog(t, t.TempDir(), WithPartitions(1), WithInflightBytes(4<<10))
	rec := make([]byte, 3<<10)
	inDone, release := make(chan struct{}), make(chan struct{})
	var acked sync.WaitGroup
	acked.Add(2)
	// A's callback holds the syncer, so B, admitted next, stays queued and
	// holds the budget; C must wait for it.
	if err := l.Append(context.Background(), 0, nil, rec, func(int64, error) { close(inDone); <-release; acked.Done() }); err != nil {
		t.Fatal(err)
	}
	<-inDone
	if err := l.Append(context.Background(), 0, nil, rec, func(_ int64, err error) {
		if err != nil {
			t.Error(err)
		}
		acked.Done()
	}); err != nil {
		t.Fatal(err)
	}
	if got := l.Stats().InflightBytes; got < 3<<10 {
		t.Fatalf("in-flight bytes %d with a record queued", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- l.Append(ctx, 0, nil, rec, func(int64, error) { t.Error("cancelled append was stored") })
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("blocked append returned %v, want context.Canceled", err)
	}
	close(release)
	acked.Wait()
	if off := mustAppend(t, l, 0, nil, rec); off != 2 {
		t.Fatalf("append after the bound freed: offset %d, want 2", off)
	}
}

func TestCloseAcknowledgesQueuedAppends(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, WithPartitions(2))
	var acks ackLog
	var calls sync.WaitGroup
	for i := range 500 {
		id := fmt.Sprint(i)
		calls.Add(1)
		err := l.Append(context.Background(), i%2, nil, value(id, 200), func(off int64, err error) {
			defer calls.Done()
			if err == nil {
				if err := acks.add(i%2, off, id); err != nil {
					t.Error(err)
				}
			} else if !errors.Is(err, readlog.ErrClosed) {
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
	calls.Wait() // every callback has run by the time Close returns
	checkAcked(t, openLog(t, dir), acks.acks, 200)
}

func TestGoroutinesAreBoundedAndReleased(t *testing.T) {
	before := runtime.NumGoroutine()
	l := openLog(t, t.TempDir(), WithPartitions(5), WithRetention(time.Hour), WithConsumers("w"))
	for p := range 5 {
		mustAppend(t, l, p, nil, []byte("v"))
		if err := l.Commit("w", p, 1); err != nil {
			t.Fatal(err)
		}
	}
	if n := runtime.NumGoroutine() - before; n > 5+1 {
		t.Fatalf("%d goroutines for 5 partitions, want one syncer each and one trimmer", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before Open\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}
