package seriesblock

import (
	"fmt"
	"math/bits"
)

// bitWriter appends bits MSB-first to a byte slice. The bits not yet used in
// the last byte are always zero, so buf is a valid column at any time.
type bitWriter struct {
	buf []byte
	// free is the number of unused low bits in the last byte of buf (0..7).
	free uint8
}

func (w *bitWriter) writeBit(b bool) {
	if w.free == 0 {
		w.buf = append(w.buf, 0)
		w.free = 8
	}
	w.free--
	if b {
		w.buf[len(w.buf)-1] |= 1 << w.free
	}
}

// writeBits appends the low n bits of v (n ≤ 64), most significant first.
func (w *bitWriter) writeBits(v uint64, n uint) {
	if n < 64 {
		v &= 1<<n - 1
	}
	for n > 0 {
		if w.free == 0 {
			w.buf = append(w.buf, 0)
			w.free = 8
		}
		take := uint(w.free)
		if take > n {
			take = n
		}
		n -= take
		chunk := byte(v>>n) & byte(1<<take-1)
		w.free -= uint8(take)
		w.buf[len(w.buf)-1] |= chunk << w.free
	}
}

// bitLen is the number of bits written.
func (w *bitWriter) bitLen() uint64 { return uint64(len(w.buf))*8 - uint64(w.free) }

func (w *bitWriter) reset() { w.buf, w.free = w.buf[:0], 0 }

// bitReader reads what a bitWriter wrote. Reading past the end is an error.
type bitReader struct {
	buf []byte
	pos uint64 // next bit
	col string // column name for errors
}

func (r *bitReader) errEnd() error {
	return fmt.Errorf("%w: %s column ends early at bit %d", ErrCorrupt, r.col, r.pos)
}

func (r *bitReader) readBit() (bool, error) {
	if r.pos >= uint64(len(r.buf))*8 {
		return false, r.errEnd()
	}
	b := r.buf[r.pos>>3]>>(7-r.pos&7)&1 == 1
	r.pos++
	return b, nil
}

// readBits reads n ≤ 64 bits, most significant first.
func (r *bitReader) readBits(n uint) (uint64, error) {
	if r.pos+uint64(n) > uint64(len(r.buf))*8 {
		return 0, r.errEnd()
	}
	var v uint64
	for n > 0 {
		off := uint(r.pos & 7)
		avail := 8 - off
		take := avail
		if take > n {
			take = n
		}
		b := uint64(r.buf[r.pos>>3]>>(avail-take)) & (1<<take - 1)
		v = v<<take | b
		r.pos += uint64(take)
		n -= take
	}
	return v, nil
}

// finish checks that the column was consumed exactly: no whole byte left
// over and the padding bits of the last byte are zero.
func (r *bitReader) finish() error {
	if want := (r.pos + 7) / 8; uint64(len(r.buf)) != want {
		return fmt.Errorf("%w: %s column has %d bytes, its %d codes use %d", ErrCorrupt, r.col, len(r.buf), r.pos, want)
	}
	if pad := r.pos & 7; pad != 0 && r.buf[len(r.buf)-1]&(1<<(8-pad)-1) != 0 {
		return fmt.Errorf("%w: %s column padding bits are not zero", ErrCorrupt, r.col)
	}
	return nil
}

// A bucket code stores an unsigned integer as a unary bucket index followed
// by the integer in that bucket's width: bucket i (i < len-1) is i one bits
// and a zero bit, the last bucket is len-1 one bits. A bucket of width 0
// holds only 0. The encoder picks the smallest bucket the value fits.
type buckets []uint8

var (
	// dodBuckets code zig-zagged delta-of-deltas of time (ns) and seq: 0 in
	// one bit for a regular cadence, then up to ±128, ±131,072 (±0.13 ms),
	// ±8.4 ms, ±2.1 s and anything in 69 bits.
	dodBuckets = buckets{0, 8, 18, 24, 32, 64}
	// valueBuckets code zig-zagged deltas of decimal-scaled values and the
	// absolute scaled value on a scale change.
	valueBuckets = buckets{4, 8, 12, 16, 24, 32, 64}
)

func (bk buckets) write(w *bitWriter, z uint64) {
	n := uint8(bits.Len64(z))
	last := len(bk) - 1
	for i, width := range bk {
		if n <= width || i == last {
			if i < last {
				// i ones then a zero.
				w.writeBits((1<<i-1)<<1, uint(i)+1)
			} else {
				w.writeBits(1<<i-1, uint(i))
			}
			w.writeBits(z, uint(width))
			return
		}
	}
}

func (bk buckets) read(r *bitReader) (uint64, error) {
	last := len(bk) - 1
	i := 0
	for ; i < last; i++ {
		b, err := r.readBit()
		if err != nil {
			return 0, err
		}
		if !b {
			break
		}
	}
	return r.readBits(uint(bk[i]))
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(z uint64) int64 { return int64(z>>1) ^ -int64(z&1) }
