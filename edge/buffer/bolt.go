package buffer

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// boltFile is the bbolt database file inside the buffer directory.
const boltFile = "buffer.bolt"

var boltBucket = []byte("readings")

const (
	// boltAllocSize is the step in which the bbolt file grows.
	boltAllocSize = 1 << 20
	// boltMaxPending bounds the writes held in memory between commits
	// (about 1 MB of readings); reaching it commits early.
	boltMaxPending = 10_000
)

// boltStore is the store on bbolt: one copy-on-write B+tree in one mmapped
// file. Pages freed by deletes go to the freelist and are reused by later
// writes, so the file stays at the high-water mark of the live data instead
// of growing with everything ever appended.
//
// Writes are group-committed: apply records them in memory (scans see
// them at once), and sync commits everything pending in one bbolt
// transaction, which bbolt fsyncs (data pages, then the meta page that
// points at them) before it returns. The buffer syncs every sync interval,
// so what a power cut or kill -9 can lose is bounded by that interval, as
// with Badger. Committing every append instead would cost a transaction
// (two fsyncs, ~35 KB written) per append; committing with bbolt's NoSync
// and fsyncing later would let a power cut write a meta page before the
// pages it points at: a corrupt database, not a lost second.
type boltStore struct {
	db  *bolt.DB
	dir string

	// mu guards the pending writes and orders commits against scans.
	mu sync.Mutex
	// pendingKeys are the keys of pending writes, sorted; pending holds
	// their values (nil: deleted).
	pendingKeys [][]byte
	pending     map[string][]byte
	closed      bool
}

// boltOptions returns the bbolt configuration for a buffer with the given
// quota (0 = unbounded).
func boltOptions(quotaBytes int64) *bolt.Options {
	return &bolt.Options{
		// A second agent on the same directory fails instead of waiting
		// for the lock forever.
		Timeout: time.Second,
		// The freelist is rebuilt by scanning at open instead of being
		// written on every commit: less written per commit on an SD card.
		NoFreelistSync: true,
		// The hashmap freelist stays fast when deletes free many pages.
		FreelistType: bolt.FreelistMapType,
		// Start with a 32 MiB map (never more than the quota): address
		// space is scarce on 32-bit, and bbolt doubles the map as the file
		// grows, so it stays within twice the file, which the quota bounds.
		InitialMmapSize: boltInitialMmap(quotaBytes),
	}
}

func boltInitialMmap(quotaBytes int64) int {
	const initial = 32 << 20
	if quotaBytes > 0 {
		return int(min(quotaBytes, initial))
	}
	return initial
}

func openBolt(dir string, quotaBytes int64) (*boltStore, error) {
	path := filepath.Join(dir, boltFile)
	db, err := bolt.Open(path, 0o600, boltOptions(quotaBytes))
	if err != nil {
		return nil, fmt.Errorf("open bolt %s: %w", path, err)
	}
	// Grow the file 1 MiB at a time (bbolt's default is 16 MiB): the file
	// then tracks the live data closely, also under small quotas.
	db.AllocSize = boltAllocSize
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open bolt %s: %w", path, err)
	}
	return &boltStore{db: db, dir: dir, pending: map[string][]byte{}}, nil
}

func boltErr(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

// apply records the writes; they reach the file at the next sync. The
// store keeps puts' values: callers must not modify them afterwards.
func (s *boltStore) apply(puts []kv, deletes [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if len(s.pendingKeys) >= boltMaxPending {
		// Commit before accepting more, so a failing disk refuses this
		// batch instead of piling writes up in memory.
		if err := s.commit(); err != nil {
			return err
		}
	}
	for _, p := range puts {
		s.setPending(p.key, p.val)
	}
	for _, k := range deletes {
		s.setPending(k, nil)
	}
	return nil
}

// setPending records one write. Called with mu held.
func (s *boltStore) setPending(k, v []byte) {
	if _, ok := s.pending[string(k)]; !ok {
		// Appends come in ascending order: usually a push at the end.
		i, _ := slices.BinarySearchFunc(s.pendingKeys, k, bytes.Compare)
		s.pendingKeys = slices.Insert(s.pendingKeys, i, slices.Clone(k))
	}
	s.pending[string(k)] = v
}

// commit writes the pending writes in one transaction, fsynced by bbolt.
// On failure they stay pending. Called with mu held.
func (s *boltStore) commit() error {
	if len(s.pendingKeys) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		// Keys arrive in ascending order at the end of the tree: full
		// pages, not the half-full ones of the default split.
		b.FillPercent = 1.0
		for _, k := range s.pendingKeys {
			var err error
			if v := s.pending[string(k)]; v != nil {
				err = b.Put(k, v)
			} else {
				err = b.Delete(k)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return boltErr(fmt.Errorf("commit %d writes: %w", len(s.pendingKeys), err))
	}
	s.pendingKeys = s.pendingKeys[:0]
	clear(s.pending)
	return nil
}

// scan merges the committed tree with the pending writes.
func (s *boltStore) scan(from []byte, limit int, fn func(k, v []byte) error) error {
	if limit <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	i, _ := slices.BinarySearchFunc(s.pendingKeys, from, bytes.Compare)
	pend := s.pendingKeys[i:]
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(boltBucket).Cursor()
		k, v := c.Seek(from)
		for n := 0; n < limit && (k != nil || len(pend) > 0); {
			var key, val []byte
			switch {
			case len(pend) == 0 || (k != nil && bytes.Compare(k, pend[0]) < 0):
				key, val = k, v
				k, v = c.Next()
			default:
				if k != nil && bytes.Equal(k, pend[0]) {
					k, v = c.Next() // overwritten or deleted by a pending write
				}
				key, val = pend[0], s.pending[string(pend[0])]
				pend = pend[1:]
				if val == nil {
					continue
				}
			}
			if err := fn(key, val); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if errors.Is(err, errStopScan) {
		return nil
	}
	return boltErr(err)
}

// sync commits the pending writes.
func (s *boltStore) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return s.commit()
}

func (s *boltStore) diskBytes() int64 { return dirSize(s.dir) }

// maintain has nothing to do: freed pages are reused by the next writes.
func (s *boltStore) maintain() {}

// liveShare is half the quota: freed pages are reused but the file keeps
// its high-water mark, pages of thinned minutes are partly empty, and each
// commit writes new copies of the pages it changes before freeing the old.
func (s *boltStore) liveShare() float64 { return 0.5 }

// close commits what is pending and closes the file.
func (s *boltStore) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	return errors.Join(s.commit(), s.db.Close())
}
