package buffer

import (
	"slices"

	"github.com/gridedge/gridedge/shared/wire"
)

// maxPendingRanges bounds the acked ranges held in memory while the file
// system is too full to delete them; beyond it Delete returns ErrDiskFull
// and the publisher keeps the batches in flight (resent, deduplicated,
// acked again later).
const maxPendingRanges = 4096

// pendingSet is an immutable set of acked readings whose deletion waits for
// free space: per epoch, sorted disjoint ranges. Readers load it without a
// lock; writers replace it under Buffer.mu.
type pendingSet struct {
	ranges map[uint64][]*wire.SeqRange
	n      int // ranges in all epochs
}

func (p *pendingSet) has(epoch, seq uint64) bool {
	if p == nil {
		return false
	}
	rs := p.ranges[epoch]
	i, _ := slices.BinarySearchFunc(rs, seq, func(r *wire.SeqRange, s uint64) int {
		switch {
		case r.Last < s:
			return -1
		case r.First > s:
			return 1
		}
		return 0
	})
	return i < len(rs) && rs[i].First <= seq && seq <= rs[i].Last
}

// with returns a set holding p and ranges of epoch, or nil when that would
// exceed maxPendingRanges.
func (p *pendingSet) with(epoch uint64, ranges []*wire.SeqRange) *pendingSet {
	out := &pendingSet{ranges: map[uint64][]*wire.SeqRange{}}
	if p != nil {
		for e, rs := range p.ranges {
			out.ranges[e] = rs
		}
	}
	out.ranges[epoch] = mergeRanges(append(slices.Clone(out.ranges[epoch]), ranges...))
	for _, rs := range out.ranges {
		out.n += len(rs)
	}
	if out.n > maxPendingRanges {
		return nil
	}
	return out
}
