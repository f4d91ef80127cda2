package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// TrimStats says what one Trim removed.
type TrimStats struct {
	Series      int // series (raw or result) whose old part was deleted
	DeadLetters int // dead letters past the count bound (age is a range)
	Conflicts   int // conflicts past the count bound
}

// Trim deletes, for each data class with a retention, everything older than
// now minus its retention, then compacts the deleted key ranges so the disk
// space is returned. Raw readings go by whole blocks: a block is deleted
// once its newest possible reading (first + MaxBlockSpan) is past the
// retention. It is safe to run beside workers: deletions cover only times
// older than any retention, and a worker never rewrites such a block.
func (s *Store) Trim(ctx context.Context, now time.Time, r Retention) (TrimStats, error) {
	var st TrimStats
	b := s.db.NewBatch()
	defer b.Close()
	if r.Readings > 0 {
		cut := orderedTime(now.Add(-r.Readings - MaxBlockSpan).UnixNano())
		n, err := s.trimSeries(b, prefixBlock, 0, cut)
		if err != nil {
			return st, err
		}
		st.Series += n
	}
	if r.Results > 0 {
		cut := orderedTime(now.Add(-r.Results).UnixNano())
		for _, pfx := range []byte{prefixResult, prefixHistory} {
			n, err := s.trimSeries(b, pfx, 0, cut)
			if err != nil {
				return st, err
			}
			st.Series += n
		}
	}
	if r.Late > 0 {
		n, err := s.trimSeries(b, prefixLate, 24, orderedTime(now.Add(-r.Late).UnixNano()))
		if err != nil {
			return st, err
		}
		st.Series += n
	}
	for _, area := range []struct {
		prefix byte
		age    time.Duration
		max    int
		n      *int
	}{{prefixDeadLetter, r.DeadLetters, r.MaxDeadLetters, &st.DeadLetters}, {prefixConflict, r.Conflicts, r.MaxConflicts, &st.Conflicts}} {
		if area.age > 0 {
			cut := binary.BigEndian.AppendUint64([]byte{area.prefix}, orderedTime(now.Add(-area.age).UnixNano()))
			if err := b.DeleteRange([]byte{area.prefix}, cut, nil); err != nil {
				return st, err
			}
		}
		n, err := s.trimCount(b, area.prefix, area.max)
		if err != nil {
			return st, err
		}
		*area.n = n
	}
	if b.Empty() {
		return st, nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return st, fmt.Errorf("store: trim: %w", err)
	}
	for _, pfx := range []byte{prefixBlock, prefixResult, prefixHistory, prefixLate, prefixDeadLetter, prefixConflict} {
		if err := s.db.Compact(ctx, []byte{pfx}, []byte{pfx + 1}, false); err != nil {
			return st, fmt.Errorf("store: compact after trim: %w", err)
		}
	}
	return st, nil
}

// trimSeries deletes, in every series under prefix, the keys whose time
// (the 8 bytes before a tail of tailLen bytes... or ending the series
// part) is below cut. Series are found by skipping from one to the next.
// For blocks and results the time follows the series part and ends the key
// (after it come 16 bytes of identity for blocks, 4 of revision for
// history); for the late stream the series is the device and the time
// follows its 0 separator.
func (s *Store) trimSeries(b *pebble.Batch, prefix byte, _ int, cut uint64) (int, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); {
		series := seriesOf(prefix, it.Key())
		if series == nil {
			return n, errBadKey
		}
		series = bytes.Clone(series)
		end := binary.BigEndian.AppendUint64(bytes.Clone(series), cut)
		if bytes.Compare(it.Key(), end) < 0 {
			if err := b.DeleteRange(series, end, nil); err != nil {
				return n, err
			}
			n++
		}
		it.SeekGE(prefixEnd(series))
	}
	return n, it.Error()
}

// seriesOf returns the part of key before its time field.
func seriesOf(prefix byte, key []byte) []byte {
	switch prefix {
	case prefixLate:
		i := bytes.IndexByte(key, 0)
		if i < 0 {
			return nil
		}
		return key[:i+1]
	default:
		// pipeline/device/channel parts, each ending in 0, then quantity(4);
		// raw blocks have device 0 channel 0 quantity(4).
		parts := 3
		if prefix == prefixBlock {
			parts = 2
		}
		i := 1
		for range parts {
			j := bytes.IndexByte(key[i:], 0)
			if j < 0 {
				return nil
			}
			i += j + 1
		}
		if len(key) < i+4+8 {
			return nil
		}
		return key[:i+4]
	}
}

// trimCount deletes all but the newest max entries (0: 10,000) of an area
// keyed by receive time (dead letters, conflicts) and returns how many it
// deleted.
func (s *Store) trimCount(b *pebble.Batch, prefix byte, max int) (int, error) {
	if max <= 0 {
		max = 10_000
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	kept := 0
	for it.Last(); it.Valid(); it.Prev() {
		if kept++; kept > max {
			cut := append(bytes.Clone(it.Key()), 0)
			deleted := 0
			for ; it.Valid(); it.Prev() {
				deleted++
			}
			if err := b.DeleteRange([]byte{prefix}, cut, nil); err != nil {
				return 0, err
			}
			return deleted, it.Error()
		}
	}
	return 0, it.Error()
}
