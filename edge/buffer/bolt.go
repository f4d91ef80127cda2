package buffer

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// boltFile is the bbolt database file inside the buffer directory.
const boltFile = "buffer.bolt"

var boltBucket = []byte("readings")

// boltAllocSize is the step in which the bbolt file grows.
const boltAllocSize = 1 << 20

// boltStore is the store on bbolt: one copy-on-write B+tree in one mmapped
// file. Pages freed by deletes go to the freelist and are reused by later
// writes, so the file stays at the high-water mark of the live data instead
// of growing with everything ever appended.
//
// Every apply is a transaction that bbolt fsyncs before it returns (data
// pages, then the meta page that points at them). bbolt relies on that order
// for crash consistency: without the fsyncs (NoSync) a power cut can leave a
// meta page pointing at pages never written, a corrupt database rather than
// a lost second. The agent appends once per sampling tick, so this is a few
// fsyncs per second (BenchmarkAppend measures it).
type boltStore struct {
	db  *bolt.DB
	dir string
}

// boltOptions returns the bbolt configuration for a buffer with the given
// quota (0 = unbounded).
func boltOptions(quotaBytes int64) *bolt.Options {
	return &bolt.Options{
		// A second agent on the same directory fails instead of waiting
		// for the lock forever.
		Timeout: time.Second,
		// The freelist is rebuilt by scanning at open instead of being
		// written on every commit: less written per append on an SD card.
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
	return &boltStore{db: db, dir: dir}, nil
}

func boltErr(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

func (s *boltStore) apply(puts []kv, deletes [][]byte) error {
	return boltErr(s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		// Keys arrive in ascending order at the end of the tree: full
		// pages, not the half-full ones of the default split.
		b.FillPercent = 1.0
		for _, p := range puts {
			if err := b.Put(p.key, p.val); err != nil {
				return err
			}
		}
		for _, k := range deletes {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}))
}

func (s *boltStore) scan(from []byte, limit int, fn func(k, v []byte) error) error {
	if limit <= 0 {
		return nil
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(boltBucket).Cursor()
		n := 0
		for k, v := c.Seek(from); k != nil && n < limit; k, v = c.Next() {
			if err := fn(k, v); err != nil {
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

// sync is almost free: every transaction was fsynced when it committed.
func (s *boltStore) sync() error { return boltErr(s.db.Sync()) }

func (s *boltStore) diskBytes() int64 { return dirSize(s.dir) }

// maintain has nothing to do: freed pages are reused by the next writes.
func (s *boltStore) maintain() {}

// liveShare is half the quota: freed pages are reused but the file keeps
// its high-water mark, pages of thinned minutes are partly empty, and each
// commit writes new copies of the pages it changes before freeing the old.
func (s *boltStore) liveShare() float64 { return 0.5 }

func (s *boltStore) close() error { return s.db.Close() }
