package buffer

import (
	"errors"
	"math"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/wire"
)

// appendSeries appends one power and one energy reading per second for the
// given minutes, starting at a minute boundary, and returns the expected
// per-minute mean power and last energy.
func appendSeries(t *testing.T, b *Buffer, start time.Time, minutes int) (means, lastEnergy map[int64]float64) {
	t.Helper()
	means, lastEnergy = map[int64]float64{}, map[int64]float64{}
	energy := 1000.0
	for s := 0; s < minutes*60; s++ {
		ts := start.Add(time.Duration(s) * time.Second)
		p := float64(100 + s%60 + 7*(s/60)) // varies within and across minutes
		energy += p / 3600
		m := minuteOf(ts.UnixNano())
		means[m] += p / 60
		lastEnergy[m] = energy
		err := b.Append("boot",
			&wire.Reading{Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: p, WallNs: ts.UnixNano(), MonoNs: int64(s) * 1e9, TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED},
			&wire.Reading{Channel: "mains", Quantity: wire.Quantity_QUANTITY_ENERGY, Value: energy, WallNs: ts.UnixNano(), MonoNs: int64(s) * 1e9, TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED})
		if err != nil {
			t.Fatal(err)
		}
	}
	return means, lastEnergy
}

func TestQuotaThinsOldestToMinuteSummaries(t *testing.T) {
	forEachBackend(t, testQuotaThinsOldestToMinuteSummaries)
}

func testQuotaThinsOldestToMinuteSummaries(t *testing.T, bk Backend) {
	root := t.TempDir()
	start := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	// No quota while filling, so the test decides when enforcement runs.
	b := openOn(t, bk, filepath.Join(root, "buf"), filepath.Join(root, "state"))
	means, lastEnergy := appendSeries(t, b, start, 30) // 3600 readings
	full := b.liveBytes.Load()
	seqBefore := b.NextSeq()
	b.Close()

	// A quota whose live share is 60% of what is held: thinning the oldest
	// minutes 60:1 must be enough, nothing dropped.
	b = openOn(t, bk, filepath.Join(root, "buf"), filepath.Join(root, "state"), WithQuota(int64(float64(full)*0.6/testLiveShare(bk))))
	defer b.Close()
	if b.liveBytes.Load() != full {
		t.Fatalf("live bytes after reopen %d, before %d", b.liveBytes.Load(), full)
	}
	if err := b.enforceQuota(); err != nil {
		t.Fatal(err)
	}
	st := b.Stats()
	if st.Dropped != 0 || st.Summarised == 0 {
		t.Fatalf("stats %+v: want thinning only", st)
	}
	if st.LiveBytes > b.liveLimit() {
		t.Fatalf("live bytes %d above the limit %d", st.LiveBytes, b.liveLimit())
	}
	if int64(3600)-int64(st.Summarised) != st.Len {
		t.Fatalf("len %d, summarised %d: readings unaccounted for", st.Len, st.Summarised)
	}
	recs, err := b.Read(0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	summaries := 0
	seen := map[uint64]bool{}
	for _, r := range recs {
		if seen[r.Seq] || r.Seq >= seqBefore {
			t.Fatalf("seq %d repeated or new", r.Seq)
		}
		seen[r.Seq] = true
		m := minuteOf(r.Reading.WallNs)
		switch {
		case r.Reading.Quantity == wire.Quantity_QUANTITY_ACTIVE_POWER && r.Reading.WallNs == m*int64(time.Minute) && r.Reading.MonoNs != (r.Reading.WallNs-start.UnixNano()):
			t.Fatalf("summary mono time not shifted with wall time: %+v", r.Reading)
		}
		// Summaries are the only readings on a minute boundary besides second 0.
		if r.Reading.Quantity == wire.Quantity_QUANTITY_ACTIVE_POWER && r.Reading.WallNs == m*int64(time.Minute) {
			if math.Abs(r.Reading.Value-means[m]) > 1e-9 && r.Reading.Value != float64(100+7*int(m-minuteOf(start.UnixNano()))) {
				t.Fatalf("minute %d: power %v, want mean %v", m, r.Reading.Value, means[m])
			}
			summaries++
		}
		if r.Reading.Quantity == wire.Quantity_QUANTITY_ENERGY && r.Reading.WallNs == (m+1)*int64(time.Minute)-int64(time.Second) {
			if r.Reading.Value != lastEnergy[m] {
				t.Fatalf("minute %d: energy %v, want last %v", m, r.Reading.Value, lastEnergy[m])
			}
		}
	}
	if summaries == 0 {
		t.Fatal("no per-minute summaries found")
	}
	// The newest minute is untouched.
	last := recs[len(recs)-1]
	if last.Seq != seqBefore-1 {
		t.Fatalf("newest reading %d thinned away (want %d kept)", last.Seq, seqBefore-1)
	}
}

func TestQuotaDropsOldestWhenThinningIsNotEnough(t *testing.T) {
	forEachBackend(t, testQuotaDropsOldestWhenThinningIsNotEnough)
}

func testQuotaDropsOldestWhenThinningIsNotEnough(t *testing.T, bk Backend) {
	root := t.TempDir()
	start := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	b := openOn(t, bk, filepath.Join(root, "buf"), filepath.Join(root, "state"))
	appendSeries(t, b, start, 30)
	full := b.liveBytes.Load()
	newest := b.NextSeq() - 1
	b.Close()

	// Live share 1% of what is held: even one reading per minute is too much.
	b = openOn(t, bk, filepath.Join(root, "buf"), filepath.Join(root, "state"), WithQuota(int64(float64(full)*0.01/testLiveShare(bk))))
	defer b.Close()
	if err := b.enforceQuota(); err != nil {
		t.Fatal(err)
	}
	st := b.Stats()
	if st.Dropped == 0 || st.LiveBytes > b.liveLimit() {
		t.Fatalf("stats %+v, limit %d", st, b.liveLimit())
	}
	if uint64(st.Len)+st.Dropped+st.Summarised != 3600 {
		t.Fatalf("len %d + dropped %d + summarised %d != 3600", st.Len, st.Dropped, st.Summarised)
	}
	recs, _ := b.Read(0, 10000)
	if len(recs) == 0 || recs[len(recs)-1].Seq != newest {
		t.Fatalf("the newest reading must survive; kept %d readings", len(recs))
	}
	// Appending keeps working and keeps the buffer bounded.
	appendSeries(t, b, start.Add(time.Hour), 5)
	if err := b.enforceQuota(); err != nil {
		t.Fatal(err)
	}
	if b.liveBytes.Load() > b.liveLimit() {
		t.Fatalf("live bytes %d above limit %d after more appends", b.liveBytes.Load(), b.liveLimit())
	}
}

func TestLiveBytesTracksAppendAndDelete(t *testing.T) {
	forEachBackend(t, testLiveBytesTracksAppendAndDelete)
}

func testLiveBytesTracksAppendAndDelete(t *testing.T, bk Backend) {
	root := t.TempDir()
	b := openOn(t, bk, filepath.Join(root, "buf"), filepath.Join(root, "state"))
	defer b.Close()
	seqs := appendN(t, b, "boot", 10)
	if b.liveBytes.Load() <= 0 {
		t.Fatal("live bytes not counted")
	}
	b.Delete(b.SeqEpoch(), &wire.SeqRange{First: seqs[0], Last: seqs[9]})
	if b.liveBytes.Load() != 0 || b.Len() != 0 {
		t.Fatalf("after deleting all: live %d len %d", b.liveBytes.Load(), b.Len())
	}
}

func TestAppendRefusedWhenDiskAlmostFull(t *testing.T) {
	forEachBackend(t, testAppendRefusedWhenDiskAlmostFull)
}

func testAppendRefusedWhenDiskAlmostFull(t *testing.T, bk Backend) {
	root := t.TempDir()
	var free atomic.Int64
	free.Store(1 << 30)
	b := openOn(t, bk, filepath.Join(root, "buf"), filepath.Join(root, "state"), WithMinFree(64<<20),
		func(s *settings) { s.freeBytes = func(string) (int64, error) { return free.Load(), nil } })
	defer b.Close()
	appendN(t, b, "boot", 3)

	free.Store(10 << 20)
	b.freeAt.Store(0) // let the next Append look again
	next := b.NextSeq()
	r := reading("mains", 1)
	if err := b.Append("boot", r); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("append on a full disk: %v, want ErrDiskFull", err)
	}
	if b.Len() != 3 || b.NextSeq() != next || b.Stats().Refused != 1 {
		t.Fatalf("refused append changed the buffer: len %d next %d->%d stats %+v", b.Len(), next, b.NextSeq(), b.Stats())
	}

	free.Store(1 << 30)
	b.freeAt.Store(0)
	if err := b.Append("boot", reading("mains", 2)); err != nil {
		t.Fatalf("append after space came back: %v", err)
	}
}
