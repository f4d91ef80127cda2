package dedup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// MaxRanges bounds the ranges one Set holds (16 B each).
const MaxRanges = 4096

// ErrCorrupt is wrapped by Decode errors.
var ErrCorrupt = errors.New("dedup: corrupt set")

// Range is an inclusive run of sequence numbers.
type Range struct{ First, Last uint64 }

// Set is a set of sequence numbers as sorted, disjoint, non-adjacent ranges.
// The zero value is empty. It is not safe for concurrent use.
type Set struct {
	r []Range
	// Closed counts gaps merged away to keep the set within MaxRanges.
	Closed uint64
}

// Contains reports whether seq is in the set.
func (s *Set) Contains(seq uint64) bool {
	i := s.search(seq)
	return i < len(s.r) && s.r[i].First <= seq
}

// search returns the index of the first range whose Last >= seq.
func (s *Set) search(seq uint64) int {
	n := len(s.r)
	// Fast path: sequence numbers mostly arrive in order, after the last range.
	if n == 0 || s.r[n-1].Last < seq {
		return n
	}
	i, _ := slices.BinarySearchFunc(s.r, seq, func(r Range, v uint64) int {
		switch {
		case r.Last < v:
			return -1
		case r.Last > v:
			return 1
		}
		return 0
	})
	return i
}

// Add inserts seq and reports whether it was new.
func (s *Set) Add(seq uint64) bool {
	i := s.search(seq)
	if i < len(s.r) && s.r[i].First <= seq {
		return false
	}
	joinsPrev := i > 0 && s.r[i-1].Last+1 == seq
	joinsNext := i < len(s.r) && seq+1 == s.r[i].First
	switch {
	case joinsPrev && joinsNext:
		s.r[i-1].Last = s.r[i].Last
		s.r = slices.Delete(s.r, i, i+1)
	case joinsPrev:
		s.r[i-1].Last = seq
	case joinsNext:
		s.r[i].First = seq
	default:
		s.r = slices.Insert(s.r, i, Range{seq, seq})
		if len(s.r) > MaxRanges {
			s.r[1].First = s.r[0].First
			s.r = slices.Delete(s.r, 0, 1)
			s.Closed++
		}
	}
	return true
}

// Ranges returns the set's ranges; the slice must not be modified.
func (s *Set) Ranges() []Range { return s.r }

// Len is the number of ranges.
func (s *Set) Len() int { return len(s.r) }

// Append appends the set's encoding to dst: the closed-gap count, the range
// count, then each range as the delta from the previous range's end and its
// length, all uvarints.
func (s *Set) Append(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, s.Closed)
	dst = binary.AppendUvarint(dst, uint64(len(s.r)))
	var prev uint64
	for _, r := range s.r {
		dst = binary.AppendUvarint(dst, r.First-prev)
		dst = binary.AppendUvarint(dst, r.Last-r.First)
		prev = r.Last
	}
	return dst
}

// Decode replaces the set with the one encoded in b.
func (s *Set) Decode(b []byte) error {
	closed, n := binary.Uvarint(b)
	if n <= 0 {
		return fmt.Errorf("%w: closed count", ErrCorrupt)
	}
	b = b[n:]
	count, n := binary.Uvarint(b)
	if n <= 0 || count > MaxRanges || count > uint64(len(b)) {
		return fmt.Errorf("%w: range count", ErrCorrupt)
	}
	b = b[n:]
	rs := make([]Range, 0, count)
	var prev uint64
	for i := range count {
		d, n := binary.Uvarint(b)
		if n <= 0 {
			return fmt.Errorf("%w: range %d", ErrCorrupt, i)
		}
		b = b[n:]
		l, n := binary.Uvarint(b)
		if n <= 0 {
			return fmt.Errorf("%w: range %d", ErrCorrupt, i)
		}
		b = b[n:]
		first := prev + d
		if (i > 0 && (d < 2 || first < prev)) || first+l < first {
			return fmt.Errorf("%w: range %d out of order", ErrCorrupt, i)
		}
		rs = append(rs, Range{first, first + l})
		prev = first + l
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(b))
	}
	s.r, s.Closed = rs, closed
	return nil
}
