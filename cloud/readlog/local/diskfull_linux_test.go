package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/gridedge/gridedge/shared/disktest"
)

func TestFullDiskFailsAppendsThenRecovers(t *testing.T) {
	mnt := disktest.Mount(t, 1<<20)
	dir := filepath.Join(mnt, "log")
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 700<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(dir, quiet(), WithPartitions(2), WithSegmentBytes(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const size = 1800
	var acks ackLog
	var mu sync.Mutex
	var failures []error
	// Waves of concurrent appends until the disk is full: a whole wave
	// queued behind a failed batch fails too.
	appendWave := func(wave, n int) {
		var wg sync.WaitGroup
		for i := range n {
			id := fmt.Sprintf("w%d-%d", wave, i)
			p := i % 2
			wg.Add(1)
			err := l.Append(context.Background(), p, []byte(id), value(id, size), func(off int64, err error) {
				defer wg.Done()
				if err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
					return
				}
				if err := acks.add(p, off, id); err != nil {
					t.Error(err)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()
	}
	wave := 0
	for ; len(failures) == 0; wave++ {
		if wave > 200 {
			t.Fatal("the 1 MiB file system never filled")
		}
		appendWave(wave, 20)
	}
	for _, err := range failures {
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("append on a full disk failed with %v, want ENOSPC", err)
		}
	}
	ackedBefore := len(acks.acks[0]) + len(acks.acks[1])
	// Still full: still failing, nothing stored, the log still answers.
	failures = nil
	appendWave(wave, 20)
	wave++
	if len(failures) == 0 {
		t.Fatal("appends succeeded on a full disk")
	}
	checkAcked(t, l, acks.acks, size)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	failures = nil
	appendWave(wave, 40)
	if len(failures) != 0 {
		t.Fatalf("appends fail after space returned: %v", failures[0])
	}
	for p := range 2 {
		st := l.Stats().Partitions[p]
		if st.End != int64(len(acks.acks[p])) || st.Durable != st.End {
			t.Fatalf("partition %d: stats %+v with %d records acknowledged: offsets not contiguous", p, st, len(acks.acks[p]))
		}
	}
	checkAcked(t, l, acks.acks, size)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir)
	checkAcked(t, l2, acks.acks, size)
	t.Logf("%d records acknowledged before the disk filled, %d in all", ackedBefore, len(acks.acks[0])+len(acks.acks[1]))
}
