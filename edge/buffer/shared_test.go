package buffer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/wire"
)

func openShared(t *testing.T, dir string, opts ...SharedOption) *Shared {
	t.Helper()
	sh, err := OpenShared(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return sh
}

// sharedMeter is one namespace's buffer directories under root.
func sharedMeter(root string, i int) (dir, state, ns string) {
	ns = fmt.Sprintf("meter-%03d", i)
	return filepath.Join(root, "buf"), filepath.Join(root, "state", ns), ns
}

func openInShared(t *testing.T, sh *Shared, root string, i int) *Buffer {
	t.Helper()
	dir, state, ns := sharedMeter(root, i)
	return open(t, dir, state, WithShared(sh, ns))
}

func forEachSharedMode(t *testing.T, test func(t *testing.T, mode SharedMode)) {
	for _, m := range []SharedMode{SharedJournal, SharedMemory} {
		t.Run(m.String(), func(t *testing.T) { test(t, m) })
	}
}

// The buffer on a namespace behaves as on an engine of its own: append,
// cursor reads, range deletes by epoch, oldest.
func TestSharedAppendReadDelete(t *testing.T) {
	forEachSharedMode(t, func(t *testing.T, mode SharedMode) {
		root := t.TempDir()
		sh := openShared(t, filepath.Join(root, "shared"), WithSharedMode(mode))
		a, b := openInShared(t, sh, root, 1), openInShared(t, sh, root, 2)
		if a.Backend() != sh.backend() {
			t.Fatalf("backend %s, want %s", a.Backend(), sh.backend())
		}
		sa := appendN(t, a, "boot", 10)
		sb := appendN(t, b, "boot", 4)
		if a.Len() != 10 || b.Len() != 4 {
			t.Fatalf("len %d, %d", a.Len(), b.Len())
		}
		n, err := a.Delete(a.SeqEpoch(), &wire.SeqRange{First: sa[1], Last: sa[3]}, &wire.SeqRange{First: sa[9], Last: sa[9] + 100})
		if err != nil || n != 4 {
			t.Fatalf("deleted %d, %v", n, err)
		}
		if n, _ := a.Delete(a.SeqEpoch()+1, &wire.SeqRange{First: 0, Last: ^uint64(0)}); n != 0 {
			t.Fatalf("foreign epoch deleted %d", n)
		}
		left, _ := a.Read(0, 100)
		if got, want := seqsOf(left), []uint64{sa[0], sa[4], sa[5], sa[6], sa[7], sa[8]}; !equal(got, want) {
			t.Fatalf("left %v, want %v", got, want)
		}
		page, _ := a.Read(sa[4], 2)
		if got := seqsOf(page); !equal(got, []uint64{sa[5], sa[6]}) {
			t.Fatalf("page %v", got)
		}
		// The other namespace is untouched.
		other, _ := b.Read(0, 100)
		if got := seqsOf(other); !equal(got, sb) || other[2].Reading.Value != 2 {
			t.Fatalf("namespace 2 holds %v", got)
		}
		if _, err := Open(filepath.Join(root, "x"), filepath.Join(root, "y"), WithShared(sh, "meter-001")); err == nil {
			t.Fatal("a namespace opened twice")
		}
		if err := errors.Join(a.Close(), b.Close(), sh.Close()); err != nil {
			t.Fatal(err)
		}
	})
}

// A clean stop and start keeps every unacked reading, its identity and the
// sequence, in both modes.
func TestSharedCleanRestartKeepsEverything(t *testing.T) {
	forEachSharedMode(t, func(t *testing.T, mode SharedMode) {
		root := t.TempDir()
		dir := filepath.Join(root, "shared")
		sh := openShared(t, dir, WithSharedMode(mode))
		want := map[int][]uint64{}
		var epochs [3]uint64
		for i := range 3 {
			b := openInShared(t, sh, root, i)
			seqs := appendN(t, b, "boot", 50+i)
			if _, err := b.Delete(b.SeqEpoch(), &wire.SeqRange{First: seqs[0], Last: seqs[9]}); err != nil {
				t.Fatal(err)
			}
			want[i], epochs[i] = seqs[10:], b.SeqEpoch()
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if err := sh.Close(); err != nil {
			t.Fatal(err)
		}
		sh = openShared(t, dir, WithSharedMode(mode))
		defer sh.Close()
		for i := range 3 {
			b := openInShared(t, sh, root, i)
			recs, err := b.Read(0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if got := seqsOf(recs); !equal(got, want[i]) || recs[0].SeqEpoch != epochs[i] || b.Recovery().Unclean {
				t.Fatalf("meter %d after restart: %v (epoch %d, unclean %v), want %v", i, got, recs[0].SeqEpoch, b.Recovery().Unclean, want[i])
			}
			if next := b.NextSeq(); next != want[i][len(want[i])-1]+1 {
				t.Fatalf("meter %d next seq %d", i, next)
			}
			b.Close()
		}
	})
}

// copyDir copies the files of src into dst: the state a crash at this
// moment would leave (the process is still running).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
}

// A crash (the journal as it is on disk while the process still runs) loses
// nothing that was synced, and a torn tail is cut, not fatal.
func TestSharedJournalCrashKeepsSyncedWrites(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "shared")
	sh := openShared(t, dir)
	b := openInShared(t, sh, root, 1)
	seqs := appendN(t, b, "boot", 40)
	if _, err := b.Delete(b.SeqEpoch(), &wire.SeqRange{First: seqs[0], Last: seqs[4]}); err != nil {
		t.Fatal(err)
	}
	if err := sh.Sync(); err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(t.TempDir(), "shared")
	copyDir(t, dir, crashed)
	b.Close()
	sh.Close()

	// The crash also tore a record in half.
	f, err := os.OpenFile(filepath.Join(crashed, sharedJournalFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0x40, 1, 2, 3, 4, opPut, 9})
	f.Close()

	sh2 := openShared(t, crashed)
	defer sh2.Close()
	_, state, ns := sharedMeter(root, 1)
	b2 := open(t, filepath.Join(root, "buf2"), state, WithShared(sh2, ns))
	defer b2.Close()
	recs, err := b2.Read(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(recs); !equal(got, seqs[5:]) {
		t.Fatalf("after the crash: %v, want %v", got, seqs[5:])
	}
}

// Memory mode writes nothing until Close: a crash loses the unacked
// readings (documented), but never a sequence number.
func TestSharedMemoryCrashLosesUnackedNotSequence(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "shared")
	sh := openShared(t, dir, WithSharedMode(SharedMemory))
	b := openInShared(t, sh, root, 1)
	seqs := appendN(t, b, "boot", 5)
	crashed := filepath.Join(t.TempDir(), "shared")
	copyDir(t, dir, crashed)
	b.Close()
	sh.Close()

	sh2 := openShared(t, crashed, WithSharedMode(SharedMemory))
	defer sh2.Close()
	_, state, ns := sharedMeter(root, 1)
	b2 := open(t, filepath.Join(root, "buf2"), state, WithShared(sh2, ns))
	defer b2.Close()
	if b2.Len() != 0 {
		t.Fatalf("memory mode kept %d readings across a crash", b2.Len())
	}
	if next := b2.NextSeq(); next <= seqs[len(seqs)-1] {
		t.Fatalf("next seq %d reuses numbers up to %d", next, seqs[len(seqs)-1])
	}
}

// The journal is rewritten once it outgrows its bound, and stays bounded
// while readings come and go; what is live survives a restart.
func TestSharedJournalStaysBounded(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "shared")
	sh := openShared(t, dir)
	sh.compactMin = 64 << 10
	b := openInShared(t, sh, root, 1)
	var held []uint64
	for range 200 {
		held = append(held, appendN(t, b, "boot", 20)...)
		// Ack all but the newest five.
		if _, err := b.Delete(b.SeqEpoch(), &wire.SeqRange{First: held[0], Last: held[len(held)-6]}); err != nil {
			t.Fatal(err)
		}
		held = held[len(held)-5:]
	}
	// 200 rounds wrote ~8 times the bound; the rewrite (in the background)
	// brings the journal back to the few live readings.
	deadline := time.Now().Add(20 * time.Second)
	for sh.Stats().JournalBytes > sh.compactMin {
		if time.Now().After(deadline) {
			t.Fatalf("journal %d bytes, bound %d", sh.Stats().JournalBytes, sh.compactMin)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Close()
	if err := sh.Close(); err != nil {
		t.Fatal(err)
	}
	sh = openShared(t, dir)
	defer sh.Close()
	b = openInShared(t, sh, root, 1)
	defer b.Close()
	recs, _ := b.Read(0, 100)
	if got := seqsOf(recs); !equal(got, held) {
		t.Fatalf("after restart %v, want %v", got, held)
	}
}

// Below the free-space reserve the journal refuses new readings with
// ErrDiskFull; deletes (acks) still go through.
func TestSharedJournalRefusesWhenDiskAlmostFull(t *testing.T) {
	root := t.TempDir()
	sh := openShared(t, filepath.Join(root, "shared"), WithSharedMinFree(1<<62))
	defer sh.Close()
	b := openInShared(t, sh, root, 1)
	defer b.Close()
	err := b.Append("boot", reading("mains", 1))
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("append on a full disk: %v, want ErrDiskFull", err)
	}
	if b.Len() != 0 {
		t.Fatalf("len %d after a refused append", b.Len())
	}
}

// A file that is not a shared store is refused with a clear error, not
// overwritten.
func TestSharedRefusesForeignFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, sharedJournalFile), []byte("something else entirely\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenShared(dir); err == nil {
		t.Fatal("opened a foreign file as a journal")
	}
}

// The in-memory table agrees with a sorted map under random puts and
// deletes (prefix deletes, scattered deletes, overwrites).
func TestMemTableMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tb memTable
	model := map[string]string{}
	next := 0
	for range 5000 {
		switch op := rng.IntN(10); {
		case op < 5:
			k := string(key(uint64(next)))
			next++
			v := fmt.Sprint(rng.Int())
			tb.put(k, []byte(v))
			model[k] = v
		case op < 6 && next > 0:
			k := string(key(uint64(rng.IntN(next))))
			tb.put(k, []byte("over"))
			model[k] = "over"
		case op < 8:
			var dels [][]byte
			for i := 0; i < rng.IntN(8); i++ {
				k := key(uint64(rng.IntN(next + 1)))
				dels = append(dels, k)
				delete(model, string(k))
			}
			tb.remove(dels)
		default:
			// Delete the oldest few, as an ack does.
			var dels [][]byte
			tb.scan(nil, rng.IntN(6), func(k, _ []byte) error {
				dels = append(dels, slices.Clone(k))
				delete(model, string(k))
				return nil
			})
			tb.remove(dels)
		}
	}
	keys := make([]string, 0, len(model))
	var bytes int64
	for k, v := range model {
		keys = append(keys, k)
		bytes += int64(len(k) + len(v))
	}
	slices.Sort(keys)
	var got []string
	tb.scan(nil, 1<<30, func(k, v []byte) error {
		if model[string(k)] != string(v) {
			t.Fatalf("key %x holds %q, model %q", k, v, model[string(k)])
		}
		got = append(got, string(k))
		return nil
	})
	if !slices.Equal(got, keys) || tb.bytes != bytes {
		t.Fatalf("table has %d keys (%d bytes), model %d (%d bytes)", len(got), tb.bytes, len(keys), bytes)
	}
}

func FuzzReplayJournal(f *testing.F) {
	var b strings.Builder
	enc := &journalEncoder{w: bufio.NewWriter(&b)}
	enc.w.WriteString(journalMagic)
	enc.record(opPut, "ns", key(1), []byte("value"))
	enc.record(opDelete, "ns", key(1), nil)
	enc.w.Flush()
	f.Add([]byte(b.String()))
	f.Add([]byte(journalMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		intact, _, err := replayJournal(bytes.NewReader(data), func(op byte, ns string, k, v []byte) {
			if op != opPut && op != opDelete {
				t.Fatalf("op %q passed on", op)
			}
		})
		if err == nil && intact > int64(len(data)) {
			t.Fatalf("intact prefix %d longer than the file (%d)", intact, len(data))
		}
	})
}
