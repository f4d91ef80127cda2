package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/batchrepr"

	"github.com/gridedge/gridedge/shared/wire"
)

// Class is what a stored key holds. The cluster wiring sends a worker's
// commit to Kafka by class: what a partition needs to resume goes to its
// changelog, results, late readings and conflicts to their own topics.
type Class int

// The classes of keys a worker commit writes.
const (
	ClassOther    Class = iota
	ClassState          // partition offset, window-engine header and devices, dedup range sets
	ClassDevice         // device counters
	ClassStatus         // latest device status
	ClassBlock          // raw readings block
	ClassResult         // window result, highest revision
	ClassHistory        // window result, one revision
	ClassLate           // late reading
	ClassConflict       // conflict
)

// KeyClass classifies a key of the store.
func KeyClass(key []byte) Class {
	if len(key) == 0 {
		return ClassOther
	}
	switch key[0] {
	case prefixOffset, prefixEngineHead, prefixEngineDev, prefixDedup:
		return ClassState
	case prefixDevice:
		return ClassDevice
	case prefixStatus:
		return ClassStatus
	case prefixBlock:
		return ClassBlock
	case prefixResult:
		return ClassResult
	case prefixHistory:
		return ClassHistory
	case prefixLate:
		return ClassLate
	case prefixConflict:
		return ClassConflict
	}
	return ClassOther
}

// Each calls fn for every key the batch sets, in the order they were set.
// A key set twice is given twice (the later value wins on Commit).
func (b *Batch) Each(fn func(key, value []byte) error) error {
	r := batchrepr.Read(b.b.Repr())
	for {
		kind, k, v, ok, err := r.Next()
		if err != nil {
			return fmt.Errorf("store: read batch: %w", err)
		}
		if !ok {
			return nil
		}
		if kind == pebble.InternalKeyKindSet {
			if err := fn(k, v); err != nil {
				return err
			}
		}
	}
}

// Set puts a key as another store wrote it (a changelog being restored, a
// sink copying a worker's output). The key must be of a known class.
func (b *Batch) Set(key, value []byte) error {
	if KeyClass(key) == ClassOther {
		return fmt.Errorf("store: set: key of unknown class %q", key[:min(len(key), 1)])
	}
	b.set(key, value)
	return nil
}

// Delete removes a key of a known class (a changelog tombstone).
func (b *Batch) Delete(key []byte) error {
	if KeyClass(key) == ClassOther {
		return fmt.Errorf("store: delete: key of unknown class %q", key[:min(len(key), 1)])
	}
	_ = b.b.Delete(key, nil)
	return nil
}

// Cursors: positions of this store in external logs (a Kafka topic
// partition), committed in the same batch as what was read up to there.
//
//	C name 0 part(4)   next offset to read (8 bytes)
const prefixCursor = 'C'

func cursorKey(name string, p int) []byte {
	k := append([]byte{prefixCursor}, name...)
	return binary.BigEndian.AppendUint32(append(k, 0), uint32(p))
}

// SetCursor records, with the batch, that the store holds what log name's
// partition p had below next.
func (b *Batch) SetCursor(name string, p int, next int64) {
	b.set(cursorKey(name, p), binary.BigEndian.AppendUint64(nil, uint64(next)))
}

// Cursor returns the next offset of log name's partition p to read (0 when
// none was recorded).
func (s *Store) Cursor(name string, p int) (int64, error) {
	v, closer, err := s.db.Get(cursorKey(name, p))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: cursor %s/%d: %w", name, p, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("store: cursor %s/%d: %w", name, p, errBadKey)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// PutWindowResult stores a result read back from a results feed as the
// window's latest revision, and in its history. The feed must give a
// window's revisions in increasing order (a window's results come from one
// partition, in commit order), as the worker's own upsert assumes: the
// upsert needs no read.
func (b *Batch) PutWindowResult(r WindowResult) error {
	q := wire.Quantity_QUANTITY_UNSPECIFIED
	if r.Quantity != "" {
		var err error
		if q, err = wire.ParseQuantity(r.Quantity); err != nil {
			return fmt.Errorf("store: result: %w", err)
		}
	}
	start := orderedTime(r.Start.UnixNano())
	key := binary.BigEndian.AppendUint64(resultSeriesPrefix(prefixResult, r.Pipeline, r.Device, r.Channel, q), start)
	hist := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(
		resultSeriesPrefix(prefixHistory, r.Pipeline, r.Device, r.Channel, q), start), r.Revision)
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("store: encode result: %w", err)
	}
	b.set(key, v)
	b.set(hist, v)
	return nil
}

// PutDeadLetterAt stores a dead letter read from a dead-letters feed under
// the id its position gives (the same record always lands on the same key).
func (b *Batch) PutDeadLetterAt(dl DeadLetter, id uint64) error {
	dl.ID = id
	dl.Received = dl.Received.UTC()
	dl.Bytes = len(dl.Payload)
	return b.setJSON(deadLetterKey(dl.Received, id), dl)
}
