package seriesblock

import (
	"encoding/binary"
	"fmt"
)

// runColumn run-length encodes a column of 64-bit values that change rarely
// (epoch, quality, time error, receive time). Closed runs are stored as
// pairs of uvarints (zig-zagged wrapping difference from the previous run's
// value, run length); the open run lives in the struct until the block is
// serialized, so appending never rewrites bytes.
type runColumn struct {
	buf   []byte
	last  uint64 // value of the last closed run (0 before the first)
	cur   uint64 // value of the open run
	count uint64 // length of the open run; 0 when the column is empty
}

func (c *runColumn) add(v uint64) {
	if c.count > 0 && v == c.cur {
		c.count++
		return
	}
	if c.count > 0 {
		c.buf = appendRun(c.buf, c.last, c.cur, c.count)
		c.last = c.cur
	}
	c.cur, c.count = v, 1
}

func appendRun(dst []byte, prev, v, n uint64) []byte {
	dst = binary.AppendUvarint(dst, zigzag(int64(v-prev)))
	return binary.AppendUvarint(dst, n)
}

// appendTo appends the serialized column, open run included.
func (c *runColumn) appendTo(dst []byte) []byte {
	dst = append(dst, c.buf...)
	if c.count > 0 {
		dst = appendRun(dst, c.last, c.cur, c.count)
	}
	return dst
}

// size is the serialized length.
func (c *runColumn) size() int {
	n := len(c.buf)
	if c.count > 0 {
		n += uvarintLen(zigzag(int64(c.cur-c.last))) + uvarintLen(c.count)
	}
	return n
}

func (c *runColumn) reset() { *c = runColumn{buf: c.buf[:0]} }

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// runReader yields the values of a serialized runColumn one at a time.
type runReader struct {
	buf   []byte
	col   string
	pos   int    // next byte
	start int    // offset of the current run, for resuming
	prev  uint64 // value of the run before the current one
	v     uint64
	left  uint64 // values left in the current run
	runs  int
}

func (r *runReader) next() (uint64, error) {
	if r.left == 0 {
		if r.pos >= len(r.buf) {
			return 0, fmt.Errorf("%w: %s column ends early", ErrCorrupt, r.col)
		}
		r.start = r.pos
		d, n := binary.Uvarint(r.buf[r.pos:])
		if n <= 0 {
			return 0, fmt.Errorf("%w: %s column: bad varint at byte %d", ErrCorrupt, r.col, r.pos)
		}
		r.pos += n
		cnt, n := binary.Uvarint(r.buf[r.pos:])
		if n <= 0 || cnt == 0 {
			return 0, fmt.Errorf("%w: %s column: bad run length at byte %d", ErrCorrupt, r.col, r.pos)
		}
		r.pos += n
		if r.runs > 0 {
			r.prev = r.v
			if d == 0 {
				// The encoder never splits a run; two equal runs in a
				// row mean the column was not written by it.
				return 0, fmt.Errorf("%w: %s column: repeated run at byte %d", ErrCorrupt, r.col, r.start)
			}
		}
		r.v = r.prev + uint64(unzigzag(d))
		r.left = cnt
		r.runs++
	}
	r.left--
	return r.v, nil
}

// finish checks that the column held exactly the values read.
func (r *runReader) finish() error {
	if r.left != 0 || r.pos != len(r.buf) {
		return fmt.Errorf("%w: %s column holds more values than the block", ErrCorrupt, r.col)
	}
	return nil
}

// resume rebuilds the writer state of a fully read column.
func (r *runReader) resume(c *runColumn) {
	if r.runs == 0 {
		*c = runColumn{}
		return
	}
	c.buf = append(c.buf[:0], r.buf[:r.start]...)
	c.last, c.cur = r.prev, r.v
	var n int
	_, n = binary.Uvarint(r.buf[r.start:])
	c.count, _ = binary.Uvarint(r.buf[r.start+n:])
}
