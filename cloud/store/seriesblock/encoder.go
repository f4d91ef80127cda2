package seriesblock

import (
	"encoding/binary"
	"unsafe"
)

// Encoder builds one block of a series, one Point at a time. The zero
// Encoder is an empty block, ready to use. An Encoder is not safe for
// concurrent use.
//
// The encoder holds only the encoded columns and a few words of state: its
// memory is SizeBytes(), at most FixedBytes + 2 × the encoded column bytes
// + 56 (the slack of growing seven buffers). A point adds at most 72
// encoded bytes, typically 1–3.
type Encoder struct {
	n            int
	minT, maxT   int64
	tPrev, tDiff uint64 // time: previous value and delta (wrapping)
	sPrev, sDiff uint64 // seq: previous value and delta (wrapping)
	val          valueState

	times, seqs, values             bitWriter
	epochs, qualities, errs, recvds runColumn
}

// FixedBytes is the memory of an Encoder besides its column buffers.
const FixedBytes = int(unsafe.Sizeof(Encoder{}))

// Append adds p after the points already in the block. Points may come in
// any time order. It returns ErrFull, and changes nothing, when the block
// already holds MaxPoints points.
func (e *Encoder) Append(p Point) error {
	if e.n >= MaxPoints {
		return ErrFull
	}
	t, s := uint64(p.TimeNs), p.Seq
	if e.n == 0 {
		dodBuckets.write(&e.times, zigzag(p.TimeNs))
		dodBuckets.write(&e.seqs, zigzag(int64(s)))
		e.tDiff, e.sDiff = 0, 0
		e.minT, e.maxT = p.TimeNs, p.TimeNs
	} else {
		td, sd := t-e.tPrev, s-e.sPrev
		dodBuckets.write(&e.times, zigzag(int64(td-e.tDiff)))
		dodBuckets.write(&e.seqs, zigzag(int64(sd-e.sDiff)))
		e.tDiff, e.sDiff = td, sd
		e.minT, e.maxT = min(e.minT, p.TimeNs), max(e.maxT, p.TimeNs)
	}
	e.tPrev, e.sPrev = t, s
	e.val.encode(&e.values, floatBits(p.Value))
	e.epochs.add(p.Epoch)
	e.qualities.add(uint64(int64(p.Quality)))
	e.errs.add(uint64(p.ErrNs))
	e.recvds.add(uint64(p.ReceivedNs))
	e.n++
	return nil
}

// Len is the number of points in the block.
func (e *Encoder) Len() int { return e.n }

// MinTime is the smallest TimeNs appended; 0 when the block is empty.
func (e *Encoder) MinTime() int64 { return e.minT }

// MaxTime is the largest TimeNs appended; 0 when the block is empty.
func (e *Encoder) MaxTime() int64 { return e.maxT }

// Reset empties the block, keeping the buffers' capacity for reuse.
func (e *Encoder) Reset() {
	*e = Encoder{
		times: bitWriter{buf: e.times.buf[:0]}, seqs: bitWriter{buf: e.seqs.buf[:0]}, values: bitWriter{buf: e.values.buf[:0]},
		epochs: runColumn{buf: e.epochs.buf[:0]}, qualities: runColumn{buf: e.qualities.buf[:0]},
		errs: runColumn{buf: e.errs.buf[:0]}, recvds: runColumn{buf: e.recvds.buf[:0]},
	}
}

// SizeBytes is the memory the Encoder holds: FixedBytes plus the capacity
// of its column buffers.
func (e *Encoder) SizeBytes() int {
	return FixedBytes + cap(e.times.buf) + cap(e.seqs.buf) + cap(e.values.buf) +
		cap(e.epochs.buf) + cap(e.qualities.buf) + cap(e.errs.buf) + cap(e.recvds.buf)
}

// Bytes returns the block as it stands: a complete block that Decode reads
// and Resume continues, whatever the number of points (an empty Encoder
// gives a valid empty block). The result is a new slice.
func (e *Encoder) Bytes() []byte { return e.AppendBytes(nil) }

// AppendBytes appends the block to dst and returns the extended slice.
func (e *Encoder) AppendBytes(dst []byte) []byte {
	dst = append(dst, Version)
	dst = binary.AppendUvarint(dst, uint64(e.n))
	if e.n > 0 {
		dst = binary.AppendVarint(dst, e.minT)
		dst = binary.AppendUvarint(dst, uint64(e.maxT)-uint64(e.minT))
	}
	for _, n := range [numColumns]int{
		len(e.times.buf), len(e.seqs.buf), len(e.values.buf),
		e.epochs.size(), e.qualities.size(), e.errs.size(), e.recvds.size(),
	} {
		dst = binary.AppendUvarint(dst, uint64(n))
	}
	dst = append(dst, e.times.buf...)
	dst = append(dst, e.seqs.buf...)
	dst = append(dst, e.values.buf...)
	dst = e.epochs.appendTo(dst)
	dst = e.qualities.appendTo(dst)
	dst = e.errs.appendTo(dst)
	return e.recvds.appendTo(dst)
}

// Resume returns an Encoder holding the points of block, so that appending
// to it gives the same bytes as appending every point to one Encoder.
// Corrupt input gives an error wrapping ErrCorrupt; a block of another
// format version one wrapping ErrVersion.
func Resume(block []byte) (*Encoder, error) {
	r, err := newReader(block)
	if err != nil {
		return nil, err
	}
	for r.i < r.n {
		if _, err := r.next(); err != nil {
			return nil, err
		}
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	e := &Encoder{
		n: r.n, minT: r.minT, maxT: r.maxT,
		tPrev: r.tPrev, tDiff: r.tDiff, sPrev: r.sPrev, sDiff: r.sDiff,
		val: r.val,
	}
	for _, c := range []struct {
		w *bitWriter
		r *bitReader
	}{{&e.times, &r.times}, {&e.seqs, &r.seqs}, {&e.values, &r.values}} {
		if len(c.r.buf) > 0 {
			c.w.buf = append([]byte(nil), c.r.buf...)
		}
		c.w.free = uint8((8 - c.r.pos&7) & 7)
	}
	r.epochs.resume(&e.epochs)
	r.qualities.resume(&e.qualities)
	r.errs.resume(&e.errs)
	r.recvds.resume(&e.recvds)
	return e, nil
}
