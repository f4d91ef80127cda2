package local

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/readlog"
)

// eventually waits (up to 10 s) for cond, which the log's background
// goroutines make true.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// diskBytes sums the sizes of a partition's segment files.
func diskBytes(t *testing.T, dir string) (int64, int) {
	t.Helper()
	bases, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, b := range bases {
		st, err := os.Stat(segmentPath(dir, b))
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
	}
	return total, len(bases)
}

func TestCommitsOfEveryGroupTrimConsumedSegments(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, WithPartitions(1), WithSegmentBytes(4<<10), WithConsumers("workers", "sink"),
		WithCommitInterval(10*time.Millisecond))
	for i := range 200 {
		mustAppend(t, l, 0, []byte("dev"), value(string(rune('a'+i%26)), 200))
	}
	bases, _ := listSegments(dir + "/0")
	wantStart := int64(0)
	for _, b := range bases {
		if b <= 100 {
			wantStart = b
		}
	}
	if err := l.Commit("workers", 0, 200); err != nil {
		t.Fatal(err)
	}
	l.trim(time.Now())
	if got := l.Stats().Partitions[0].Start; got != 0 {
		t.Fatalf("start %d with the sink group still at 0", got)
	}
	if err := l.Commit("sink", 0, 100); err != nil {
		t.Fatal(err)
	}
	eventually(t, "trimming below the sink's commit", func() bool { return l.Stats().Partitions[0].Start == wantStart })
	st := l.Stats().Partitions[0]
	if st.Trimmed != 0 {
		t.Fatalf("%d records counted as lost; all were consumed", st.Trimmed)
	}
	// The stats drop a segment before its file is deleted.
	eventually(t, "the trimmed segments' files deleted", func() bool {
		bytes, n := diskBytes(t, dir+"/0")
		return bytes == st.Bytes && n == st.Segments
	})
	var te *readlog.TrimmedError
	if _, err := l.Open(0, 0); !errors.As(err, &te) || te.Available != wantStart || !errors.Is(err, readlog.ErrTrimmed) {
		t.Fatalf("open at 0: %v", err)
	}
	eventually(t, "committed offsets on disk", func() bool {
		data, _ := os.ReadFile(filepath.Join(dir, "0", commitFile))
		var c map[string]int64
		return json.Unmarshal(data, &c) == nil && c["workers"] == 200 && c["sink"] == 100
	})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir, WithConsumers("workers", "sink"))
	if c := l2.Stats().Partitions[0].Committed; c["workers"] != 200 || c["sink"] != 100 {
		t.Fatalf("committed offsets after reopen: %v", c)
	}
	l2.Close()
	l3 := openLog(t, dir, WithConsumers("workers"))
	if c := l3.Stats().Partitions[0].Committed; len(c) != 1 || c["workers"] != 200 {
		t.Fatalf("committed offsets with only workers registered: %v", c)
	}
}

func TestRetentionBytesDeletesUnconsumedSegmentsAndCountsThem(t *testing.T) {
	dir := t.TempDir()
	const seg, keep = 4 << 10, 12 << 10
	l := openLog(t, dir, WithPartitions(1), WithSegmentBytes(seg), WithRetentionBytes(keep), WithConsumers("workers"))
	early, err := l.Open(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	for i := range 400 {
		mustAppend(t, l, 0, []byte("dev"), value(string(rune('a'+i%26)), 200))
		if i == 9 {
			if err := l.Commit("workers", 0, 10); err != nil {
				t.Fatal(err)
			}
		}
	}
	l.trim(time.Now())
	st := l.Stats().Partitions[0]
	if st.Bytes > keep+seg || st.Start == 0 {
		t.Fatalf("stats %+v: want at most %d bytes and a trimmed start", st, keep+seg)
	}
	if st.Trimmed != st.Start-10 {
		t.Fatalf("%d records counted lost, want %d (start %d, committed 10)", st.Trimmed, st.Start-10, st.Start)
	}
	if bytes, n := diskBytes(t, dir+"/0"); bytes != st.Bytes || n != st.Segments {
		t.Fatalf("disk holds %d bytes in %d segments, stats say %d in %d", bytes, n, st.Bytes, st.Segments)
	}
	// The early reader still reads its open segment, then learns where data
	// resumes.
	var read int64
	var te *readlog.TrimmedError
	for {
		recs, err := early.Fetch(t.Context(), 50)
		if errors.As(err, &te) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		read += int64(len(recs))
	}
	if te.Requested != read || te.Available != st.Start || read == 0 {
		t.Fatalf("early reader read %d records, then %+v; start %d", read, te, st.Start)
	}
	if recs := readRange(t, l, 0, te.Available, 400); len(recs) != int(400-te.Available) {
		t.Fatalf("re-opened reader read %d records", len(recs))
	}
}

func TestRetentionAgeEmptiesAnIdlePartition(t *testing.T) {
	dir := t.TempDir()
	var now atomic.Int64
	now.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	l := openLog(t, dir, WithPartitions(2), WithSegmentBytes(4<<10), WithRetention(time.Hour), withClock(clock))
	for i := range 60 {
		mustAppend(t, l, 0, []byte("dev"), value("old", 200))
		if i%2 == 0 {
			mustAppend(t, l, 1, []byte("dev"), value("old", 200))
		}
	}
	now.Add(int64(30 * time.Minute))
	mustAppend(t, l, 1, []byte("dev"), value("newer", 200))
	now.Add(int64(45 * time.Minute)) // "old" records are 75 min old, "newer" 45 min
	// Partition 1 keeps the segment holding "newer" (whole segments go).
	bases, _ := listSegments(dir + "/1")
	keep1 := bases[len(bases)-1]
	if keep1 == 0 {
		t.Fatal("partition 1 has a single segment")
	}
	l.kickTrimmer()
	eventually(t, "partition 0 emptied by age", func() bool {
		st := l.Stats().Partitions[0]
		return st.Start == 60 && st.Segments == 1 && st.Bytes == segHeaderLen
	})
	eventually(t, "partition 1 trimmed to its newest segment", func() bool {
		return l.Stats().Partitions[1].Start == keep1
	})
	st := l.Stats()
	if st.Partitions[0].Trimmed != 60 || st.Partitions[1].Trimmed != keep1 || st.Partitions[1].End != 31 {
		t.Fatalf("stats after age retention: %+v", st.Partitions)
	}
	if bytes, n := diskBytes(t, dir+"/0"); bytes != segHeaderLen || n != 1 {
		t.Fatalf("partition 0 holds %d bytes in %d files", bytes, n)
	}
	if recs := readRange(t, l, 1, 30, 31); recs[0].value != string(value("newer", 200)) {
		t.Fatalf("kept record %.10q", recs[0].value)
	}
	if off := mustAppend(t, l, 0, []byte("dev"), []byte("fresh")); off != 60 {
		t.Fatalf("append after the partition emptied: offset %d", off)
	}
	if recs := readRange(t, l, 0, 60, 61); recs[0].value != "fresh" {
		t.Fatalf("read %q", recs[0].value)
	}
}
