package local

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const segSuffix = ".log"

// segment is one file of a partition, named by the offset of its first
// record. Fields are guarded by the partition's mutex.
type segment struct {
	base int64
	path string
	// size is the bytes of the file that are durable and complete frames.
	size int64
	// lastTime is the append time (Unix ns) of the newest record, or the
	// file's modification time for segments found closed at Open.
	lastTime int64
	// index holds sparse (offset, position) pairs in increasing order; it
	// may be empty (segments found closed at Open: readers then scan from
	// the start of the file).
	index []indexEntry
}

type indexEntry struct{ offset, pos int64 }

// seek returns the file position to start reading at to find offset.
func (s *segment) seek(offset int64) int64 {
	i := sort.Search(len(s.index), func(i int) bool { return s.index[i].offset > offset })
	if i == 0 {
		return segHeaderLen
	}
	return s.index[i-1].pos
}

func segmentPath(dir string, base int64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, segSuffix))
}

// listSegments returns the base offsets of dir's segment files, sorted.
func listSegments(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var bases []int64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, segSuffix) || e.IsDir() {
			continue
		}
		base, err := strconv.ParseInt(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil || base < 0 {
			return nil, fmt.Errorf("unexpected file %s in %s", name, dir)
		}
		bases = append(bases, base)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases, nil
}

// createSegment creates (or empties) the segment file for base and writes
// its header. The caller fsyncs the file and the directory.
func createSegment(dir string, base int64) (*os.File, error) {
	path := segmentPath(dir, base)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if _, err := f.WriteAt([]byte(segMagic), 0); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("write segment header %s: %w", path, err)
	}
	return f, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// checkHeader verifies a segment file's magic. A file shorter than the
// header whose bytes are a prefix of it was torn while being created.
func checkHeader(f *os.File, size int64) (torn bool, err error) {
	buf := make([]byte, segHeaderLen)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	if string(buf[:n]) != segMagic[:n] {
		return false, fmt.Errorf("%s is not a readings log segment (bad header)", f.Name())
	}
	return int64(n) < segHeaderLen || size < segHeaderLen, nil
}

// scanner reads frames from a segment file through a buffer. Frames it
// returns alias the buffer until the next fill.
type scanner struct {
	buf  []byte
	r, w int
	// filePos is the file position of buf[w].
	filePos int64
	max     int // largest buffer size (one maximal frame)
}

func (s *scanner) reset(pos int64) { s.r, s.w, s.filePos = 0, 0, pos }

// pos is the file position of the next undecoded byte.
func (s *scanner) pos() int64 { return s.filePos - int64(s.w-s.r) }

// fill moves unread bytes to the front of the buffer and reads more, up to
// file position limit. It reports how many bytes it read.
func (s *scanner) fill(f *os.File, limit int64) (int, error) {
	if s.r > 0 {
		s.w = copy(s.buf, s.buf[s.r:s.w])
		s.r = 0
	}
	if s.w == len(s.buf) && len(s.buf) < s.max {
		nb := make([]byte, min(max(2*len(s.buf), 4096), s.max))
		copy(nb, s.buf[:s.w])
		s.buf = nb
	}
	want := int64(len(s.buf) - s.w)
	if left := limit - s.filePos; left < want {
		want = left
	}
	if want <= 0 {
		return 0, nil
	}
	n, err := f.ReadAt(s.buf[s.w:s.w+int(want)], s.filePos)
	s.w += n
	s.filePos += int64(n)
	if err != nil && !(errors.Is(err, io.EOF) && int64(n) == want) {
		return n, fmt.Errorf("read %s at %d: %w", f.Name(), s.filePos, err)
	}
	return n, nil
}

// recoverSegment scans the last segment of a partition from its start,
// truncates it at the first torn or corrupt frame (or a frame whose offset
// is not the next one) and returns the resulting segment with its index,
// and the next offset.
func (p *partition) recoverSegment(f *os.File, base int64) (*segment, int64, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	size := st.Size()
	torn, err := checkHeader(f, size)
	if err != nil {
		return nil, 0, err
	}
	seg := &segment{base: base, path: f.Name(), size: segHeaderLen, lastTime: st.ModTime().UnixNano()}
	if torn {
		p.log.Warn("readings log: segment header torn by a crash, rewriting it", "segment", f.Name())
		if err := f.Truncate(0); err != nil {
			return nil, 0, err
		}
		if _, err := f.WriteAt([]byte(segMagic), 0); err != nil {
			return nil, 0, err
		}
		return seg, base, f.Sync()
	}
	sc := scanner{buf: make([]byte, p.o.readBuffer), max: p.o.maxRecordBytes + frameHeaderLen}
	sc.reset(segHeaderLen)
	next, lastIndexed := base, int64(-1)
	var bad error
	for bad == nil {
		fr, err := decodeFrame(sc.buf[sc.r:sc.w], p.crc, p.o.maxRecordBytes+bodyFixedLen)
		switch {
		case errors.Is(err, errShort):
			n, err := sc.fill(f, size)
			if err != nil {
				return nil, 0, err
			}
			if n == 0 {
				if sc.r != sc.w {
					bad = errors.New("torn record at the end")
				} else {
					bad = io.EOF
				}
			}
			continue
		case err != nil:
			bad = err
			continue
		case fr.offset != next:
			bad = fmt.Errorf("%w: offset %d where %d was expected", ErrCorrupt, fr.offset, next)
			continue
		}
		pos := sc.pos()
		if lastIndexed < 0 || pos-lastIndexed >= p.o.indexInterval {
			seg.index = append(seg.index, indexEntry{offset: fr.offset, pos: pos})
			lastIndexed = pos
		}
		sc.r += fr.size
		seg.lastTime = fr.unixNano
		next++
	}
	seg.size = sc.pos()
	if seg.size < size {
		p.log.Warn("readings log: truncating the last segment at the first torn or corrupt record (never acknowledged unless the disk corrupted it)",
			"segment", f.Name(), "at", seg.size, "dropped_bytes", size-seg.size, "reason", bad)
		if err := f.Truncate(seg.size); err != nil {
			return nil, 0, fmt.Errorf("truncate %s: %w", f.Name(), err)
		}
		if err := f.Sync(); err != nil {
			return nil, 0, fmt.Errorf("fsync %s: %w", f.Name(), err)
		}
	}
	return seg, next, nil
}
