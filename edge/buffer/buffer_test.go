package buffer

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gridedge/gridedge/shared/wire"
)

func reading(ch string, v float64) *wire.Reading {
	return &wire.Reading{Channel: ch, Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: v,
		WallNs: 1_700_000_000_000_000_000 + int64(v), MonoNs: int64(v), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED}
}

func open(t *testing.T, dir, state string, opts ...Option) *Buffer {
	t.Helper()
	b, err := Open(dir, state, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testBackends are the backends that may be opened on this platform: both
// on 64-bit ones, bolt alone on 32-bit ones (Badger is refused there).
func testBackends() []Backend {
	if is32Bit {
		return []Backend{BackendBolt}
	}
	return []Backend{BackendBadger, BackendBolt}
}

// forEachBackend runs test once per backend, as a subtest named after it.
func forEachBackend(t *testing.T, test func(t *testing.T, bk Backend)) {
	for _, bk := range testBackends() {
		t.Run(string(bk), func(t *testing.T) { test(t, bk) })
	}
}

// openOn opens a buffer on backend bk.
func openOn(t *testing.T, bk Backend, dir, state string, opts ...Option) *Buffer {
	t.Helper()
	b := open(t, dir, state, append([]Option{WithBackend(bk)}, opts...)...)
	if b.Backend() != bk {
		t.Fatalf("opened backend %s, want %s", b.Backend(), bk)
	}
	return b
}

// testLiveShare is the share of the quota live data may use on bk.
func testLiveShare(bk Backend) float64 {
	if bk == BackendBolt {
		return (&boltStore{}).liveShare()
	}
	return liveShare(BadgerOptions("", nil).Compression)
}

func appendN(t *testing.T, b *Buffer, boot string, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := 0; i < n; i++ {
		r := reading("mains", float64(i))
		if err := b.Append(boot, r); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, r.Seq)
	}
	return seqs
}

func seqsOf(rs []Record) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.Seq
	}
	return out
}

func TestAppendReadDelete(t *testing.T) { forEachBackend(t, testAppendReadDelete) }

func testAppendReadDelete(t *testing.T, bk Backend) {
	root := t.TempDir()
	b := openOn(t, bk, filepath.Join(root, "buf"), filepath.Join(root, "state"))
	defer b.Close()

	seqs := appendN(t, b, "boot-a", 10)
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("sequence numbers not consecutive: %v", seqs)
		}
	}
	if b.Len() != 10 {
		t.Fatalf("Len = %d, want 10", b.Len())
	}
	all, err := b.Read(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 10 || all[0].Seq != seqs[0] || all[0].BootID != "boot-a" || all[0].SeqEpoch != b.SeqEpoch() ||
		all[3].Reading.Value != 3 || all[3].Reading.Seq != seqs[3] {
		t.Fatalf("read back %+v", all)
	}
	// Cursor reads continue after the given seq, bounded by max.
	page, _ := b.Read(seqs[4], 3)
	if got := seqsOf(page); len(got) != 3 || got[0] != seqs[5] || got[2] != seqs[7] {
		t.Fatalf("page after %d: %v", seqs[4], got)
	}
	// Delete two ranges, overlapping, and one beyond what is held.
	n, err := b.Delete(b.SeqEpoch(),
		&wire.SeqRange{First: seqs[1], Last: seqs[3]},
		&wire.SeqRange{First: seqs[2], Last: seqs[4]},
		&wire.SeqRange{First: seqs[9], Last: seqs[9] + 1000})
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 || b.Len() != 5 {
		t.Fatalf("deleted %d, len %d; want 5, 5", n, b.Len())
	}
	left, _ := b.Read(0, 100)
	want := []uint64{seqs[0], seqs[5], seqs[6], seqs[7], seqs[8]}
	if got := seqsOf(left); !equal(got, want) {
		t.Fatalf("left %v, want %v", got, want)
	}
	// An ack for another epoch deletes nothing.
	if n, _ := b.Delete(b.SeqEpoch()+1, &wire.SeqRange{First: 0, Last: math.MaxUint64}); n != 0 {
		t.Fatalf("foreign epoch deleted %d", n)
	}
	// Deleting again is idempotent.
	if n, _ := b.Delete(b.SeqEpoch(), &wire.SeqRange{First: seqs[1], Last: seqs[4]}); n != 0 {
		t.Fatalf("second delete removed %d", n)
	}
	oldest, ok, err := b.Oldest()
	if err != nil || !ok || oldest.Seq != seqs[0] {
		t.Fatalf("oldest %v %v %v", oldest.Seq, ok, err)
	}
	rr, _ := b.ReadRange(seqs[5], seqs[7], 10)
	if got := seqsOf(rr); !equal(got, seqs[5:8]) {
		t.Fatalf("range read %v", got)
	}
	st := b.Stats()
	if st.Appended != 10 || st.Deleted != 5 || st.Len != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBadInput(t *testing.T) { forEachBackend(t, testBadInput) }

func testBadInput(t *testing.T, bk Backend) {
	root := t.TempDir()
	b := openOn(t, bk, filepath.Join(root, "buf"), filepath.Join(root, "state"))
	defer b.Close()
	bad := []*wire.Reading{
		nil,
		{Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: math.NaN(), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED},
		{Channel: "a/b", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED},
		{Channel: "mains", TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED},
	}
	next := b.NextSeq()
	for i, r := range bad {
		// A good reading in the same call must not be stored either.
		if err := b.Append("boot", reading("ok", 1), r); err == nil {
			t.Fatalf("bad reading %d accepted", i)
		}
	}
	if b.Len() != 0 || b.NextSeq() != next {
		t.Fatalf("rejected appends changed the buffer: len %d next %d->%d", b.Len(), next, b.NextSeq())
	}
	if _, err := Open(root, root, WithBackend(bk)); err == nil {
		t.Fatal("same buffer and state dir accepted")
	}
	b2 := filepath.Join(root, "b2")
	s2 := filepath.Join(root, "s2")
	if err := os.MkdirAll(s2, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s2, seqStateFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(b2, s2, WithBackend(bk)); err == nil {
		t.Fatal("corrupt sequence state accepted")
	}
}

func TestReopenKeepsReadingsAndSequence(t *testing.T) {
	forEachBackend(t, testReopenKeepsReadingsAndSequence)
}

func testReopenKeepsReadingsAndSequence(t *testing.T, bk Backend) {
	root := t.TempDir()
	dir, state := filepath.Join(root, "buf"), filepath.Join(root, "state")
	b := openOn(t, bk, dir, state)
	first := appendN(t, b, "boot-a", 5)
	epoch := b.SeqEpoch()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Append("boot-a", reading("x", 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}

	b = openOn(t, bk, dir, state)
	if b.SeqEpoch() != epoch {
		t.Fatalf("epoch changed across reopen")
	}
	if rec := b.Recovery(); rec.Unclean {
		t.Fatalf("clean close reported as unclean: %+v", rec)
	}
	got, _ := b.Read(0, 100)
	if !equal(seqsOf(got), first) {
		t.Fatalf("after reopen %v, want %v", seqsOf(got), first)
	}
	second := appendN(t, b, "boot-b", 3)
	if second[0] <= first[len(first)-1] {
		t.Fatalf("sequence repeated: %v then %v", first, second)
	}
	b.Close()

	// Wiping the buffer dir alone keeps the counter and the epoch.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	b = openOn(t, bk, dir, state)
	if b.SeqEpoch() != epoch || b.Len() != 0 {
		t.Fatalf("wiped buffer: epoch %x (was %x), len %d", b.SeqEpoch(), epoch, b.Len())
	}
	third := appendN(t, b, "boot-c", 2)
	if third[0] <= second[len(second)-1] {
		t.Fatalf("sequence repeated after wiping buffer: %v then %v", second, third)
	}
	b.Close()

	// Wiping everything starts a new epoch.
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	b = openOn(t, bk, dir, state)
	defer b.Close()
	if b.SeqEpoch() == epoch {
		t.Fatal("epoch kept after wiping state")
	}
}

func TestCrashNeverReusesSequence(t *testing.T) { forEachBackend(t, testCrashNeverReusesSequence) }

func testCrashNeverReusesSequence(t *testing.T, bk Backend) {
	root := t.TempDir()
	dir, state := filepath.Join(root, "buf"), filepath.Join(root, "state")
	b := openOn(t, bk, dir, state, WithReserve(10))
	seqs := appendN(t, b, "boot", 25)
	// Simulate a crash: the state file is what the last reservation wrote,
	// not what a clean Close would write.
	st, _, err := loadSeqState(state)
	if err != nil {
		t.Fatal(err)
	}
	if st.ReservedThrough < seqs[len(seqs)-1] {
		t.Fatalf("used %d beyond the reservation %d", seqs[len(seqs)-1], st.ReservedThrough)
	}
	b.Close()
	if err := st.save(state); err != nil { // restore the pre-close state: unclean
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil { // and lose the buffer too
		t.Fatal(err)
	}
	b = openOn(t, bk, dir, state, WithReserve(10))
	defer b.Close()
	rec := b.Recovery()
	if !rec.Unclean || rec.ReservedThrough != st.ReservedThrough {
		t.Fatalf("recovery %+v", rec)
	}
	if next := appendN(t, b, "boot2", 1)[0]; next <= seqs[len(seqs)-1] {
		t.Fatalf("reused %d after crash (last used %d)", next, seqs[len(seqs)-1])
	}
}

func TestManyInOneAppend(t *testing.T) { forEachBackend(t, testManyInOneAppend) }

func testManyInOneAppend(t *testing.T, bk Backend) {
	root := t.TempDir()
	b := openOn(t, bk, filepath.Join(root, "buf"), filepath.Join(root, "state"))
	defer b.Close()
	rs := make([]*wire.Reading, 5000)
	for i := range rs {
		rs[i] = reading("mains", float64(i))
	}
	if err := b.Append("boot", rs...); err != nil {
		t.Fatal(err)
	}
	n, err := b.Delete(b.SeqEpoch(), &wire.SeqRange{First: rs[0].Seq, Last: rs[4999].Seq})
	if err != nil || n != 5000 || b.Len() != 0 {
		t.Fatalf("deleted %d (%v), len %d", n, err, b.Len())
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestQuarantineCorruptBuffer(t *testing.T) { forEachBackend(t, testQuarantineCorruptBuffer) }

func testQuarantineCorruptBuffer(t *testing.T, bk Backend) {
	root := t.TempDir()
	dir, state := filepath.Join(root, "buf"), filepath.Join(root, "state")
	b := openOn(t, bk, dir, state)
	seqs := appendN(t, b, "boot", 5)
	b.Close()
	// A power cut mid-write leaves a garbled file: Badger's manifest, or
	// both of bbolt's meta pages.
	file, garbage, reason := "MANIFEST", []byte("garbage after a power cut"), "magic"
	if bk == BackendBolt {
		file, garbage, reason = boltFile, bytes.Repeat([]byte("garbage!"), 2048), "invalid database"
	}
	f, err := os.OpenFile(filepath.Join(dir, file), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(garbage, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, state, WithBackend(bk)); err == nil {
		t.Fatal("corrupt buffer opened without quarantine")
	}
	b = openOn(t, bk, dir, state, WithQuarantine(true))
	defer b.Close()
	rec := b.Recovery()
	if rec.Quarantined == "" || !strings.Contains(rec.QuarantineReason, reason) {
		t.Fatalf("recovery %+v, want reason containing %q", rec, reason)
	}
	if _, err := os.Stat(filepath.Join(rec.Quarantined, file)); err != nil {
		t.Fatalf("quarantined directory not kept: %v", err)
	}
	if b.Len() != 0 {
		t.Fatalf("fresh buffer holds %d", b.Len())
	}
	// The counter survived in the state directory: no number is reused.
	if next := appendN(t, b, "boot", 1)[0]; next <= seqs[len(seqs)-1] {
		t.Fatalf("seq %d reused after quarantine (last before %d)", next, seqs[len(seqs)-1])
	}
}

func TestLockedBufferIsNotQuarantined(t *testing.T) {
	forEachBackend(t, testLockedBufferIsNotQuarantined)
}

func testLockedBufferIsNotQuarantined(t *testing.T, bk Backend) {
	root := t.TempDir()
	dir, state := filepath.Join(root, "buf"), filepath.Join(root, "state")
	b := openOn(t, bk, dir, state)
	defer b.Close()
	// A second process (here: a second Open) finds Badger's lock held.
	if _, err := Open(dir, filepath.Join(root, "state2"), WithBackend(bk), WithQuarantine(true)); err == nil {
		t.Fatal("second open of a locked buffer succeeded")
	}
	if matches, _ := filepath.Glob(dir + ".corrupt-*"); len(matches) != 0 {
		t.Fatalf("locked buffer was quarantined: %v", matches)
	}
}
