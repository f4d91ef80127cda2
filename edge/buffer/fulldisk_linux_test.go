package buffer

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/disktest"
	"github.com/gridedge/gridedge/shared/wire"
)

// fill writes a file until the file system is full and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []int{1 << 20, 4 << 10, 512} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
	return path
}

// The file system under the buffer fills up (another process's file):
// appends are refused with ErrDiskFull, acks still delete (or hide and
// delete later) without the process dying of SIGBUS inside Badger, and once
// the space returns everything resumes by itself: nothing accepted and not
// acked is lost, nothing acked comes back, also after a reopen.
func TestFullDiskNeverCrashesAndRecovers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend Backend) {
		{
			mnt := disktest.Mount(t, 96<<20)
			dir, state := filepath.Join(mnt, "buf"), filepath.Join(mnt, "state")
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			opts := []Option{WithBackend(backend), WithMinFree(8 << 20), WithSyncInterval(20 * time.Millisecond),
				WithGCInterval(20 * time.Millisecond), WithLogger(log)}
			b := open(t, dir, state, opts...)
			want := map[uint64]float64{} // accepted and not acked: seq → value
			appendN := func(n int) error {
				rs := make([]*wire.Reading, n)
				for i := range rs {
					rs[i] = reading("mains", float64(len(want)+i))
				}
				err := b.Append("boot", rs...)
				if err == nil {
					for _, r := range rs {
						want[r.Seq] = r.Value
					}
				}
				return err
			}
			for range 30 {
				if err := appendN(100); err != nil {
					t.Fatal(err)
				}
			}
			epoch := b.SeqEpoch()
			ack := func(first, last uint64) {
				t.Helper()
				n, err := b.Delete(epoch, &wire.SeqRange{First: first, Last: last})
				if err != nil {
					t.Fatalf("delete %d..%d: %v", first, last, err)
				}
				held := 0
				for s := first; s <= last; s++ {
					if _, ok := want[s]; ok {
						held++
						delete(want, s)
					}
				}
				if n != held {
					t.Fatalf("delete %d..%d removed %d, want %d", first, last, n, held)
				}
			}
			check := func(b *Buffer) {
				t.Helper()
				recs, err := b.Read(0, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) != len(want) || b.Len() != int64(len(want)) {
					t.Fatalf("%d readings readable, Len %d, want %d", len(recs), b.Len(), len(want))
				}
				for _, r := range recs {
					if v, ok := want[r.Seq]; !ok || v != r.Reading.Value {
						t.Fatalf("seq %d: value %v, want %v (held %v)", r.Seq, r.Reading.Value, v, ok)
					}
				}
			}

			filler := fill(t, mnt)
			deadline := time.Now().Add(20 * time.Second)
			for {
				err := appendN(10)
				if errors.Is(err, ErrDiskFull) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("appends never refused on a full file system (last: %v)", err)
				}
			}
			if !b.Stats().DiskFull {
				t.Fatal("Stats().DiskFull is false on a full file system")
			}
			ack(1, 1000)
			ack(1001, 1500)
			check(b)
			if err := b.Sync(); err != nil && backend == BackendBadger {
				t.Fatalf("sync on a full file system: %v", err)
			}

			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			deadline = time.Now().Add(20 * time.Second)
			for appendN(10) != nil {
				if time.Now().After(deadline) {
					t.Fatal("appends did not resume once space returned")
				}
			}
			ack(1501, 2000)
			if p := b.Stats().PendingDeletes; p != 0 {
				t.Fatalf("%d acked ranges still wait although space returned", p)
			}
			check(b)
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			b = open(t, dir, state, opts...)
			defer b.Close()
			check(b)
		}
	})
}
