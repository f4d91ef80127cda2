package seriesblock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Point is one raw reading of a series.
type Point struct {
	// TimeNs is the event time, ns since the Unix epoch (negative before
	// 1970).
	TimeNs int64
	// Value is the reading. Every bit pattern round-trips exactly, NaN
	// payloads included.
	Value float64
	// ErrNs is the bound of the time error, ns.
	ErrNs int64
	// Quality is the time quality (wire.TimeQuality).
	Quality int32
	// Epoch is the device's sequence epoch.
	Epoch uint64
	// Seq is the device's sequence number within Epoch.
	Seq uint64
	// ReceivedNs is when the collector received the reading's batch.
	ReceivedNs int64
}

// Version is the format version written in the first byte of every block.
const Version = 1

// MaxPoints is the most points a block holds.
const MaxPoints = 1 << 16

const numColumns = 7

var columnNames = [numColumns]string{"time", "seq", "value", "epoch", "quality", "error", "received"}

var (
	// ErrCorrupt is wrapped by every error about a block that is not a
	// well-formed block of this format.
	ErrCorrupt = errors.New("seriesblock: corrupt block")
	// ErrVersion is wrapped by the error for a block of an unknown format
	// version.
	ErrVersion = errors.New("seriesblock: unsupported block version")
	// ErrFull is returned by Append when the block holds MaxPoints points.
	ErrFull = errors.New("seriesblock: block full")
)

func floatBits(f float64) uint64 { return math.Float64bits(f) }

// Info is what a block's header says, readable without decoding it.
type Info struct {
	Points  int
	MinTime int64 // 0 when Points is 0
	MaxTime int64 // 0 when Points is 0
}

// ReadInfo reads the header of block.
func ReadInfo(block []byte) (Info, error) {
	var h header
	if _, err := h.parse(block); err != nil {
		return Info{}, err
	}
	return Info{Points: h.n, MinTime: h.minT, MaxTime: h.maxT}, nil
}

type header struct {
	n          int
	minT, maxT int64
	cols       [numColumns][]byte
}

func (h *header) parse(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, fmt.Errorf("%w: empty", ErrCorrupt)
	}
	if b[0] != Version {
		return 0, fmt.Errorf("%w: version %d, this build reads %d", ErrVersion, b[0], Version)
	}
	pos := 1
	uvarint := func(what string) (uint64, error) {
		v, n := binary.Uvarint(b[pos:])
		if n <= 0 {
			return 0, fmt.Errorf("%w: header: bad %s at byte %d", ErrCorrupt, what, pos)
		}
		pos += n
		return v, nil
	}
	n, err := uvarint("point count")
	if err != nil {
		return 0, err
	}
	if n > MaxPoints {
		return 0, fmt.Errorf("%w: header: %d points, at most %d", ErrCorrupt, n, MaxPoints)
	}
	h.n = int(n)
	if h.n > 0 {
		v, k := binary.Varint(b[pos:])
		if k <= 0 {
			return 0, fmt.Errorf("%w: header: bad min time at byte %d", ErrCorrupt, pos)
		}
		pos += k
		span, err := uvarint("time span")
		if err != nil {
			return 0, err
		}
		h.minT = v
		h.maxT = int64(uint64(v) + span)
		if h.maxT < h.minT {
			return 0, fmt.Errorf("%w: header: time span overflows", ErrCorrupt)
		}
	}
	var lens [numColumns]uint64
	total := uint64(0)
	for i := range lens {
		if lens[i], err = uvarint(columnNames[i] + " column length"); err != nil {
			return 0, err
		}
		total += min(lens[i], uint64(len(b))) // no overflow: each term ≤ len(b)
	}
	if total != uint64(len(b)-pos) {
		return 0, fmt.Errorf("%w: columns take %d bytes, block has %d after the header", ErrCorrupt, total, len(b)-pos)
	}
	for i, l := range lens {
		h.cols[i] = b[pos : pos+int(l) : pos+int(l)]
		pos += int(l)
	}
	// Every point takes at least one bit of the time and value columns;
	// this bounds what a reader may allocate for a block by its size.
	if uint64(h.n) > 8*uint64(min(len(h.cols[0]), len(h.cols[2]))) {
		return 0, fmt.Errorf("%w: header: %d points do not fit the columns", ErrCorrupt, h.n)
	}
	return pos, nil
}

// Decode calls fn with every point of block, in the order they were
// appended, until fn returns false. The block is checked as it is read: on
// a corrupt block the error (wrapping ErrCorrupt) may come after fn has
// seen some points, so a caller that needs all or nothing collects the
// points and uses them only when Decode returns nil. Decode allocates
// nothing per point.
func Decode(block []byte, fn func(Point) bool) error {
	r, err := newReader(block)
	if err != nil {
		return err
	}
	for r.i < r.n {
		p, err := r.next()
		if err != nil {
			return err
		}
		if !fn(p) {
			return nil
		}
	}
	return r.finish()
}

// AppendPoints decodes block and appends its points to dst. On error dst
// is returned unchanged in length.
func AppendPoints(dst []Point, block []byte) ([]Point, error) {
	n0 := len(dst)
	if info, err := ReadInfo(block); err == nil {
		dst = growPoints(dst, info.Points)
	}
	err := Decode(block, func(p Point) bool { dst = append(dst, p); return true })
	if err != nil {
		return dst[:n0], err
	}
	return dst, nil
}

// growPoints makes room for n more points, at least doubling the capacity
// so that appending block after block copies each point a bounded number
// of times.
func growPoints(dst []Point, n int) []Point {
	if cap(dst)-len(dst) < n {
		nd := make([]Point, len(dst), max(len(dst)+n, 2*cap(dst)))
		copy(nd, dst)
		dst = nd
	}
	return dst
}

// reader decodes a block point by point; Resume keeps its final state.
type reader struct {
	n, i           int
	hdrMin, hdrMax int64
	minT, maxT     int64
	tPrev, tDiff   uint64
	sPrev, sDiff   uint64
	val            valueState

	times, seqs, values             bitReader
	epochs, qualities, errs, recvds runReader
}

func newReader(block []byte) (*reader, error) {
	var h header
	if _, err := h.parse(block); err != nil {
		return nil, err
	}
	r := &reader{n: h.n, hdrMin: h.minT, hdrMax: h.maxT}
	for i, br := range []*bitReader{&r.times, &r.seqs, &r.values} {
		*br = bitReader{buf: h.cols[i], col: columnNames[i]}
	}
	for i, rr := range []*runReader{&r.epochs, &r.qualities, &r.errs, &r.recvds} {
		*rr = runReader{buf: h.cols[3+i], col: columnNames[3+i]}
	}
	return r, nil
}

func (r *reader) next() (Point, error) {
	var p Point
	tz, err := dodBuckets.read(&r.times)
	if err != nil {
		return p, err
	}
	sz, err := dodBuckets.read(&r.seqs)
	if err != nil {
		return p, err
	}
	if r.i == 0 {
		r.tPrev, r.sPrev = uint64(unzigzag(tz)), uint64(unzigzag(sz))
		r.tDiff, r.sDiff = 0, 0
	} else {
		r.tDiff += uint64(unzigzag(tz))
		r.sDiff += uint64(unzigzag(sz))
		r.tPrev += r.tDiff
		r.sPrev += r.sDiff
	}
	p.TimeNs, p.Seq = int64(r.tPrev), r.sPrev
	if r.i == 0 {
		r.minT, r.maxT = p.TimeNs, p.TimeNs
	} else {
		r.minT, r.maxT = min(r.minT, p.TimeNs), max(r.maxT, p.TimeNs)
	}
	vb, err := r.val.decode(&r.values)
	if err != nil {
		return p, err
	}
	p.Value = math.Float64frombits(vb)
	if p.Epoch, err = r.epochs.next(); err != nil {
		return p, err
	}
	q, err := r.qualities.next()
	if err != nil {
		return p, err
	}
	if int64(q) != int64(int32(int64(q))) {
		return p, fmt.Errorf("%w: quality column: %d is not a 32-bit value", ErrCorrupt, int64(q))
	}
	p.Quality = int32(int64(q))
	e, err := r.errs.next()
	if err != nil {
		return p, err
	}
	p.ErrNs = int64(e)
	rv, err := r.recvds.next()
	if err != nil {
		return p, err
	}
	p.ReceivedNs = int64(rv)
	r.i++
	return p, nil
}

// finish checks, after every point was read, that the columns held nothing
// more and that the header's time range is the points'.
func (r *reader) finish() error {
	for _, br := range []*bitReader{&r.times, &r.seqs, &r.values} {
		if err := br.finish(); err != nil {
			return err
		}
	}
	for _, rr := range []*runReader{&r.epochs, &r.qualities, &r.errs, &r.recvds} {
		if err := rr.finish(); err != nil {
			return err
		}
	}
	if r.n > 0 && (r.minT != r.hdrMin || r.maxT != r.hdrMax) {
		return fmt.Errorf("%w: header time range [%d, %d], points span [%d, %d]", ErrCorrupt, r.hdrMin, r.hdrMax, r.minT, r.maxT)
	}
	return nil
}
