package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// PartitionState is what a worker restores on start.
type PartitionState struct {
	// Next is the readings-log offset to read next (0 for a new partition).
	Next int64
	// EngineHeader and EngineDevices are the stored window-engine delta
	// parts (window.RestoreDelta); EngineHeader is nil for a new partition.
	EngineHeader  []byte
	EngineDevices [][]byte
}

// LoadPartition reads partition p's stored state. dedup is called for each
// stored range set with the device, epoch and encoding.
func (s *Store) LoadPartition(p int, dedup func(device string, epoch uint64, set []byte) error) (PartitionState, error) {
	var st PartitionState
	v, closer, err := s.db.Get(partitionKey(prefixOffset, p))
	switch {
	case err == nil:
		if len(v) == 8 {
			st.Next = int64(binary.BigEndian.Uint64(v))
		}
		closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return st, fmt.Errorf("store: partition %d offset: %w", p, err)
	}
	v, closer, err = s.db.Get(partitionKey(prefixEngineHead, p))
	switch {
	case err == nil:
		st.EngineHeader = bytes.Clone(v)
		closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return st, fmt.Errorf("store: partition %d engine: %w", p, err)
	}
	err = s.scan(partitionKey(prefixEngineDev, p), func(k, v []byte) error {
		st.EngineDevices = append(st.EngineDevices, bytes.Clone(v))
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("store: partition %d engine devices: %w", p, err)
	}
	pfx := partitionKey(prefixDedup, p)
	err = s.scan(pfx, func(k, v []byte) error {
		rest := k[len(pfx):]
		i := bytes.IndexByte(rest, 0)
		if i < 0 || len(rest) != i+9 {
			return errBadKey
		}
		return dedup(string(rest[:i]), binary.BigEndian.Uint64(rest[i+1:]), v)
	})
	if err != nil {
		return st, fmt.Errorf("store: partition %d dedup: %w", p, err)
	}
	return st, nil
}

// EngineDevice reads the stored window-engine state of one device of
// partition p (window.WithStateLoader); a device without stored state is
// an error.
func (s *Store) EngineDevice(p int, device string) ([]byte, error) {
	v, closer, err := s.db.Get(partitionDeviceKey(prefixEngineDev, p, device))
	if err != nil {
		return nil, fmt.Errorf("store: partition %d engine state of %s: %w", p, device, err)
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

// DropPartitionState deletes partition p's worker state (offset, engine,
// dedup): the worker then starts from the beginning of the log. Used when
// the pipeline configuration changed.
func (s *Store) DropPartitionState(p int) error {
	b := s.db.NewBatch()
	defer b.Close()
	for _, pfx := range []byte{prefixOffset, prefixEngineHead, prefixEngineDev, prefixDedup} {
		k := partitionKey(pfx, p)
		if err := b.DeleteRange(k, prefixEnd(k), nil); err != nil {
			return err
		}
	}
	return b.Commit(pebble.Sync)
}

// DropResults deletes every result, its history and the late stream (the
// pipeline configuration changed: they are recomputed).
func (s *Store) DropResults() error {
	b := s.db.NewBatch()
	defer b.Close()
	for _, pfx := range []byte{prefixResult, prefixHistory, prefixLate} {
		if err := b.DeleteRange([]byte{pfx}, []byte{pfx + 1}, nil); err != nil {
			return err
		}
	}
	return b.Commit(pebble.Sync)
}

// scan calls fn for every key with prefix, in key order. k and v are valid
// only during the call.
func (s *Store) scan(prefix []byte, fn func(k, v []byte) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		if err := fn(it.Key(), v); err != nil {
			return err
		}
	}
	return it.Error()
}
