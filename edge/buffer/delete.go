package buffer

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/gridedge/gridedge/shared/wire"
)

// Delete removes exactly the held readings of epoch whose sequence numbers
// fall in ranges (inclusive) and returns how many it removed. Ranges may
// overlap or cover numbers no longer held; readings of another epoch are
// kept.
func (b *Buffer) Delete(epoch uint64, ranges ...*wire.SeqRange) (int, error) {
	merged := mergeRanges(ranges)
	if len(merged) == 0 {
		return 0, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, ErrClosed
	}
	pend := b.pending.Load()
	var keys []entry
	for _, r := range merged {
		err := b.db.scan(key(r.First), math.MaxInt, func(k, v []byte) error {
			seq := seqOf(k)
			if seq > r.Last {
				return errStopScan
			}
			if rec, err := decode(k, v); err == nil && rec.SeqEpoch == epoch && !pend.has(epoch, seq) {
				keys = append(keys, entry{key: key(seq), size: entrySize(int64(len(v)))})
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("buffer: delete: %w", err)
		}
	}
	if len(keys) == 0 {
		return 0, nil
	}
	if b.flushPending() {
		if err := b.deleteKeys(keys, true); err != nil {
			return 0, err
		}
	} else {
		// No room to write even a tombstone: hide the readings and delete
		// them once space returns.
		next := pend.with(epoch, merged)
		if next == nil {
			return 0, fmt.Errorf("%w: %d acked ranges already wait for space", ErrDiskFull, maxPendingRanges)
		}
		var size int64
		for _, e := range keys {
			size += e.size
		}
		b.pending.Store(next)
		b.length.Add(-int64(len(keys)))
		b.liveBytes.Add(-size)
		b.log.Warn("file system full: acked readings hidden, deleted once space returns", "readings", len(keys), "pending_ranges", next.n)
	}
	b.deleted.Add(uint64(len(keys)))
	return len(keys), nil
}

// flushPending deletes the acked readings that waited for space, if there
// is room now. It reports whether the buffer may write (nothing waits any
// more). Called with mu held.
func (b *Buffer) flushPending() bool {
	if !b.canWrite() {
		return false
	}
	pend := b.pending.Load()
	if pend == nil {
		return true
	}
	var keys []entry
	for epoch, rs := range pend.ranges {
		for _, r := range rs {
			err := b.db.scan(key(r.First), math.MaxInt, func(k, v []byte) error {
				seq := seqOf(k)
				if seq > r.Last {
					return errStopScan
				}
				if rec, err := decode(k, v); err == nil && rec.SeqEpoch == epoch {
					keys = append(keys, entry{key: key(seq)})
				}
				return nil
			})
			if err != nil {
				b.log.Error("deleting acked readings that waited for space", "err", err)
				return false
			}
		}
	}
	// Counters were updated when the readings were hidden.
	if err := b.deleteKeys(keys, false); err != nil {
		b.log.Error("deleting acked readings that waited for space", "err", err)
		return false
	}
	b.pending.Store(nil)
	b.log.Info("space returned: acked readings deleted", "readings", len(keys))
	return true
}

func (b *Buffer) pendingRanges() int {
	if p := b.pending.Load(); p != nil {
		return p.n
	}
	return 0
}

// entry is a held reading's key and estimated size.
type entry struct {
	key  []byte
	size int64
}

// deleteKeys removes entries in transactions of bounded size, counting
// them out of the length and live size when count is set. Called with mu
// held.
func (b *Buffer) deleteKeys(keys []entry, count bool) error {
	for start := 0; start < len(keys); start += maxTxnEntries {
		chunk := keys[start:min(start+maxTxnEntries, len(keys))]
		var size int64
		dels := make([][]byte, len(chunk))
		for i, e := range chunk {
			dels[i] = e.key
			size += e.size
		}
		if err := b.db.apply(nil, dels); err != nil {
			return fmt.Errorf("buffer: delete: %w", err)
		}
		if count {
			b.length.Add(-int64(len(chunk)))
			b.liveBytes.Add(-size)
		}
	}
	return nil
}

func mergeRanges(in []*wire.SeqRange) []*wire.SeqRange {
	rs := make([]*wire.SeqRange, 0, len(in))
	for _, r := range in {
		if r != nil && r.First <= r.Last {
			rs = append(rs, &wire.SeqRange{First: r.First, Last: r.Last})
		}
	}
	slices.SortFunc(rs, func(a, b *wire.SeqRange) int { return cmp.Compare(a.First, b.First) })
	var out []*wire.SeqRange
	for _, r := range rs {
		if n := len(out); n > 0 && (out[n-1].Last == ^uint64(0) || r.First <= out[n-1].Last+1) {
			out[n-1].Last = max(out[n-1].Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	return out
}
