package local

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/gridedge/gridedge/cloud/readlog"
)

// fillPartition appends n records of about size bytes to partition 0 and
// returns the segment files' bases.
func fillPartition(t *testing.T, dir string, n, size int, opts ...Option) {
	t.Helper()
	l := openLog(t, dir, append([]Option{WithPartitions(1)}, opts...)...)
	for i := range n {
		mustAppend(t, l, 0, []byte("dev"), value(fmt.Sprint(i), size))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	bases, err := listSegments(dir + "/0")
	if err != nil || len(bases) == 0 {
		t.Fatal(bases, err)
	}
	return segmentPath(dir+"/0", bases[len(bases)-1])
}

func frameStart(recInSeg, size int) int64 {
	return segHeaderLen + int64(recInSeg)*int64(frameHeaderLen+len("dev")+size)
}

func TestRecoveryCutsTornAndCorruptTails(t *testing.T) {
	const n, size = 20, 100
	frame := int64(frameHeaderLen + len("dev") + size)
	cases := []struct {
		name   string
		damage func(t *testing.T, path string)
		want   int64 // records left
	}{
		{"torn last record", func(t *testing.T, path string) { truncate(t, path, frameStart(n, size)-frame/2) }, n - 1},
		{"torn length field", func(t *testing.T, path string) { truncate(t, path, frameStart(n-1, size)+2) }, n - 1},
		{"bit flip in last value", func(t *testing.T, path string) { flip(t, path, frameStart(n, size)-5) }, n - 1},
		{"bit flip in record 12's header", func(t *testing.T, path string) { flip(t, path, frameStart(12, size)+9) }, 12},
		{"bit flip in a length", func(t *testing.T, path string) { flip(t, path, frameStart(7, size)+3) }, 7},
		{"zeros after the end", func(t *testing.T, path string) { appendBytes(t, path, make([]byte, 4096)) }, n},
		{"garbage after the end", func(t *testing.T, path string) { appendBytes(t, path, []byte("\x30\x00\x00\x00garbage")) }, n},
		{"untouched", func(*testing.T, string) {}, n},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			fillPartition(t, dir, n, size)
			c.damage(t, lastSegment(t, dir))
			l := openLog(t, dir)
			if got := end(l, 0); got != c.want {
				t.Fatalf("end %d after recovery, want %d", got, c.want)
			}
			recs := readRange(t, l, 0, 0, c.want)
			for i, r := range recs {
				if r.value != string(value(fmt.Sprint(i), size)) {
					t.Fatalf("record %d damaged: %.20q", i, r.value)
				}
			}
			if off := mustAppend(t, l, 0, []byte("dev"), []byte("next")); off != c.want {
				t.Fatalf("next append got offset %d, want %d", off, c.want)
			}
			if got := readRange(t, l, 0, c.want, c.want+1); got[0].value != "next" {
				t.Fatalf("appended record reads back as %q", got[0].value)
			}
			st, err := os.Stat(lastSegment(t, dir))
			if err != nil || st.Size() != frameStart(int(c.want), size)+int64(frameHeaderLen+len("dev")+len("next")) {
				t.Fatalf("segment size %d after recovery and one append (%v)", st.Size(), err)
			}
		})
	}
}

func TestRecoveryOfASegmentTornAtCreation(t *testing.T) {
	dir := t.TempDir()
	fillPartition(t, dir, 10, 50)
	// A crash after creating the next segment, before its header was
	// complete.
	if err := os.WriteFile(segmentPath(dir+"/0", 10), []byte(segMagic[:3]), 0o600); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, dir)
	if off := mustAppend(t, l, 0, []byte("dev"), []byte("x")); off != 10 {
		t.Fatalf("append after recovery: offset %d, want 10", off)
	}
	if recs := readRange(t, l, 0, 0, 11); recs[10].value != "x" || recs[9].value != string(value("9", 50)) {
		t.Fatalf("read %+v", recs[9:])
	}
	l.Close()
	if err := os.WriteFile(segmentPath(dir+"/0", 11), []byte("not-a-segment-file"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, quiet()); err == nil {
		t.Fatal("open with a foreign file as last segment: no error")
	}
}

func TestCorruptClosedSegmentFailsTheReader(t *testing.T) {
	dir := t.TempDir()
	fillPartition(t, dir, 60, 100, WithSegmentBytes(2<<10))
	bases, _ := listSegments(dir + "/0")
	if len(bases) < 3 {
		t.Fatalf("%d segments", len(bases))
	}
	flip(t, segmentPath(dir+"/0", bases[1]), frameStart(1, 100)+40)
	l := openLog(t, dir)
	r, err := l.Open(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var read int64
	for {
		recs, err := r.Fetch(t.Context(), 100)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("fetch: %v, want ErrCorrupt", err)
			}
			break
		}
		read += int64(len(recs))
	}
	if read != bases[1]+1 {
		t.Fatalf("read %d records before the corrupt one, want %d", read, bases[1]+1)
	}
	// Readers elsewhere are unaffected.
	if recs := readRange(t, l, 0, bases[2], 60); len(recs) != int(60-bases[2]) {
		t.Fatalf("read %d records after the corrupt segment", len(recs))
	}
	var te *readlog.TrimmedError
	if _, err := l.Open(0, -1); !errors.As(err, &te) {
		t.Fatalf("open below the start: %v", err)
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
}
