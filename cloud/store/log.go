package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

// The ingest log numbers every deduplicated reading with an offset, in the
// transaction that stores it, so a windowing engine can apply each reading
// exactly once and resume from a checkpointed offset after a crash.
//
// Batches of different devices commit in parallel, so offsets are handed out
// in blocks under logState.mu and a block becomes readable only once every
// block below it has committed or failed. A failed transaction leaves its
// block unused: offsets increase, with gaps where writes failed.
type logState struct {
	mu      sync.Mutex
	next    uint64              // first offset of the next block
	pending map[uint64]struct{} // first offsets of blocks not yet resolved
	durable uint64              // every offset <= durable is resolved
}

func (l *logState) reserve(n int) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := l.next
	l.next += uint64(n)
	l.pending[first] = struct{}{}
	return first
}

// resolve marks the block starting at first as committed or failed.
func (l *logState) resolve(first uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pending, first)
	low := l.next
	for f := range l.pending {
		low = min(low, f)
	}
	l.durable = low - 1
}

func (l *logState) durableThrough() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.durable
}

// openLog finds the last offset on disk.
func openLog(db *badger.DB) (*logState, error) {
	l := &logState{pending: map[uint64]struct{}{}}
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}, Reverse: true})
		defer it.Close()
		it.Seek(logKey(math.MaxUint64))
		if it.Valid() {
			k := it.Item().Key()
			if len(k) != 9 {
				return errBadKey
			}
			l.durable = binary.BigEndian.Uint64(k[1:])
		}
		return nil
	})
	l.next = l.durable + 1
	return l, err
}

func logKey(offset uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixLog}, offset)
}

// logValue: received(8) time(8) value(8) epoch(8) seq(8) quantity(4)
// quality(1) len(device)(2) device len(channel)(2) channel.
func logValue(device string, epoch uint64, r *wire.Reading, receivedNs int64) []byte {
	v := make([]byte, 0, 45+4+len(device)+len(r.Channel))
	v = binary.BigEndian.AppendUint64(v, uint64(receivedNs))
	v = binary.BigEndian.AppendUint64(v, uint64(r.WallNs))
	v = binary.BigEndian.AppendUint64(v, math.Float64bits(r.Value))
	v = binary.BigEndian.AppendUint64(v, epoch)
	v = binary.BigEndian.AppendUint64(v, r.Seq)
	v = binary.BigEndian.AppendUint32(v, uint32(r.Quantity))
	v = append(v, byte(r.TimeQuality))
	v = binary.BigEndian.AppendUint16(v, uint16(len(device)))
	v = append(v, device...)
	v = binary.BigEndian.AppendUint16(v, uint16(len(r.Channel)))
	return append(v, r.Channel...)
}

func decodeLogValue(v []byte, r *window.Reading) (receivedNs int64, err error) {
	const fixed = 45
	if len(v) < fixed+2 {
		return 0, fmt.Errorf("store: log value has %d bytes", len(v))
	}
	receivedNs = int64(binary.BigEndian.Uint64(v[0:]))
	r.TimeNs = int64(binary.BigEndian.Uint64(v[8:]))
	r.Value = math.Float64frombits(binary.BigEndian.Uint64(v[16:]))
	r.SeqEpoch = binary.BigEndian.Uint64(v[24:])
	r.Seq = binary.BigEndian.Uint64(v[32:])
	r.Quantity = wire.Quantity(binary.BigEndian.Uint32(v[40:]))
	r.Quality = wire.TimeQuality(v[44])
	rest := v[fixed:]
	n := int(binary.BigEndian.Uint16(rest))
	if len(rest) < 2+n+2 {
		return 0, errors.New("store: log value truncated")
	}
	r.Device = string(rest[2 : 2+n])
	rest = rest[2+n:]
	m := int(binary.BigEndian.Uint16(rest))
	if len(rest) != 2+m {
		return 0, errors.New("store: log value truncated")
	}
	r.Channel = string(rest[2:])
	return receivedNs, nil
}

// LogEnd is the highest ingest offset that can be replayed: every reading
// stored with a lower offset is readable, and no write still in flight will
// appear below it.
func (s *Store) LogEnd() uint64 { return s.ingestLog.durableThrough() }

// LogEntry is one reading of the ingest log.
type LogEntry struct {
	Offset     uint64
	ReceivedNs int64
	Reading    window.Reading
}

// ReplayLog calls fn for every reading with after < offset <= LogEnd(), in
// offset order. The entry is reused between calls. Returning an error from fn
// stops the replay and returns it.
func (s *Store) ReplayLog(ctx context.Context, after uint64, fn func(e *LogEntry) error) error {
	end := s.LogEnd()
	if after >= end {
		return nil
	}
	var e LogEntry
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}, PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		n := 0
		for it.Seek(logKey(after + 1)); it.Valid(); it.Next() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			k := it.Item().Key()
			if len(k) != 9 {
				return errBadKey
			}
			e.Offset = binary.BigEndian.Uint64(k[1:])
			if e.Offset > end {
				return nil
			}
			if err := it.Item().Value(func(v []byte) (err error) {
				e.ReceivedNs, err = decodeLogValue(v, &e.Reading)
				return err
			}); err != nil {
				return fmt.Errorf("offset %d: %w", e.Offset, err)
			}
			if err := fn(&e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: replay log after %d: %w", after, err)
	}
	return nil
}

// ReplayTimed implements the window pipeline's TimedLog: the processing
// time of a reading is when the collector received its batch.
func (s *Store) ReplayTimed(ctx context.Context, after uint64, fn func(offset uint64, procNs int64, r *window.Reading) error) error {
	return s.ReplayLog(ctx, after, func(e *LogEntry) error { return fn(e.Offset, e.ReceivedNs, &e.Reading) })
}

// Replay implements the window pipeline's Log over the ingest log.
func (s *Store) Replay(ctx context.Context, after uint64, fn func(offset uint64, r *window.Reading) error) error {
	return s.ReplayLog(ctx, after, func(e *LogEntry) error { return fn(e.Offset, &e.Reading) })
}
