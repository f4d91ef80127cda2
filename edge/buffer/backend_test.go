package buffer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/gridedge/gridedge/shared/wire"
)

func TestBackendSelection(t *testing.T) {
	root := t.TempDir()
	want := BackendBadger
	if is32Bit {
		want = BackendBolt
	}
	for _, name := range []Backend{"", BackendAuto} {
		b := open(t, filepath.Join(root, "auto"+string(name)), filepath.Join(root, "state-auto"+string(name)), WithBackend(name))
		if b.Backend() != want {
			t.Errorf("backend %q opened %s, want %s on this platform", name, b.Backend(), want)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Open(filepath.Join(root, "badger"), filepath.Join(root, "state-badger"), WithBackend(BackendBadger))
	if is32Bit != errors.Is(err, ErrBadgerOn32Bit) {
		t.Fatalf("badger on a %d-bit platform: err %v", map[bool]int{true: 32, false: 64}[is32Bit], err)
	}
	if _, err := os.Stat(filepath.Join(root, "badger", "MANIFEST")); is32Bit && err == nil {
		t.Fatal("refused badger backend still created its files")
	}
	if _, err := Open(filepath.Join(root, "x"), filepath.Join(root, "state-x"), WithBackend("rocksdb")); err == nil {
		t.Fatal("unknown backend accepted")
	}
	if _, err := ParseBackend("Bolt"); err == nil {
		t.Fatal("backend names are exact; \"Bolt\" accepted")
	}
	if got, err := Resolve(BackendBolt); err != nil || got != BackendBolt {
		t.Fatalf("Resolve(bolt) = %s, %v", got, err)
	}
}

// TestBoltFileReusesFreedPages fills a backlog, drains it (as acks do),
// fills a backlog of the same size again, and checks the file did not
// grow: pages freed by deletes are reused, so the file stays at the
// high-water mark of the live data.
func TestBoltFileReusesFreedPages(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "buf")
	b := openOn(t, BackendBolt, dir, filepath.Join(root, "state"))
	defer b.Close()
	const backlog = 40_000
	fillAndDrain := func(round int) int64 {
		rs := make([]*wire.Reading, 0, 100)
		for i := 0; i < backlog; i++ {
			rs = append(rs, reading("mains", float64(round*backlog+i)))
			if len(rs) == cap(rs) {
				if err := b.Append("boot", rs...); err != nil {
					t.Fatal(err)
				}
				rs = rs[:0]
			}
		}
		if err := b.Sync(); err != nil {
			t.Fatal(err)
		}
		peak := fileSize(t, filepath.Join(dir, boltFile))
		for b.Len() > 0 {
			recs, err := b.Read(0, 500)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Delete(b.SeqEpoch(), &wire.SeqRange{First: recs[0].Seq, Last: recs[len(recs)-1].Seq}); err != nil {
				t.Fatal(err)
			}
		}
		return peak
	}
	first := fillAndDrain(0)
	second := fillAndDrain(1)
	third := fillAndDrain(2)
	if second > first || third > first {
		t.Fatalf("file grew on backlogs of the same size: %d, then %d, then %d bytes", first, second, third)
	}
	if live := int64(backlog) * entrySize(60); first > 2*live+boltAllocSize {
		t.Fatalf("file %d bytes for a backlog whose live estimate is %d", first, live)
	}
	t.Logf("bolt file at a %d-reading backlog: %d bytes (%.0f B/reading); again after draining: %d, %d",
		backlog, first, float64(first)/backlog, second, third)
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

// TestBoltScanMergesPendingWrites checks that scans see committed and
// pending writes as one ordered store: pending puts override, pending
// deletes hide, before and after the commit alike.
func TestBoltScanMergesPendingWrites(t *testing.T) {
	s, err := openBolt(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	var puts []kv
	for seq := uint64(1); seq <= 10; seq++ {
		puts = append(puts, kv{key(seq), []byte{byte(seq)}})
	}
	if err := s.apply(puts, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.apply([]kv{{key(5), []byte{50}}, {key(12), []byte{12}}}, [][]byte{key(3), key(6), key(11)}); err != nil {
		t.Fatal(err)
	}
	scanAll := func(from uint64, limit int) []string {
		var got []string
		if err := s.scan(key(from), limit, func(k, v []byte) error {
			got = append(got, fmt.Sprintf("%d=%d", seqOf(k), v[0]))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	want := "[2=2 4=4 5=50 7=7 8=8]"
	if got := fmt.Sprint(scanAll(2, 5)); got != want {
		t.Fatalf("before commit: %s, want %s", got, want)
	}
	if got := fmt.Sprint(scanAll(9, 100)); got != "[9=9 10=10 12=12]" {
		t.Fatalf("tail before commit: %s", got)
	}
	if err := s.sync(); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(scanAll(2, 5)); got != want {
		t.Fatalf("after commit: %s, want %s", got, want)
	}
	if got := fmt.Sprint(scanAll(0, 100)); got != "[1=1 2=2 4=4 5=50 7=7 8=8 9=9 10=10 12=12]" {
		t.Fatalf("all after commit: %s", got)
	}
}

// TestBoltFileStaysWithinQuota appends more than the quota holds, with the
// quota enforced as it goes, and checks the file stays within the quota.
func TestBoltFileStaysWithinQuota(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "buf")
	const quota = 8 << 20
	b := openOn(t, BackendBolt, dir, filepath.Join(root, "state"), WithQuota(quota))
	defer b.Close()
	rs := make([]*wire.Reading, 0, 500)
	const n = 150_000 // ~14 MB of live estimate: more than three times the live share
	for i := 0; i < n; i++ {
		rs = append(rs, reading("mains", float64(i)))
		if len(rs) == cap(rs) {
			if err := b.Append("boot", rs...); err != nil {
				t.Fatal(err)
			}
			rs = rs[:0]
			if err := b.enforceQuota(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	st := b.Stats()
	if st.Dropped+st.Summarised == 0 || st.LiveBytes > b.liveLimit() {
		t.Fatalf("quota not enforced: %+v, live limit %d", st, b.liveLimit())
	}
	size := fileSize(t, filepath.Join(dir, boltFile))
	if size > quota {
		t.Fatalf("bolt file %d bytes, quota %d", size, quota)
	}
	t.Logf("bolt file %d bytes under a %d-byte quota; %d held, %d summarised, %d dropped", size, quota, st.Len, st.Summarised, st.Dropped)
}
