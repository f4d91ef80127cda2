package buffer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// BadgerOptions returns the Badger configuration the buffer uses. Badger's
// defaults are for servers (64 MB memtables ×5, 256 MB block cache, every
// table index in RAM, 1 GB mmapped value-log files) and have failed to mmap
// on 32-bit ARM; these keep the whole store within a few tens of MB of RAM
// and address space on a 512 MB Pi Zero. The reasoning for each value is in
// docs/buffer.md.
func BadgerOptions(dir string, log *slog.Logger) badger.Options {
	o := badger.DefaultOptions(dir).
		WithMemTableSize(8 << 20). // 15% of it (1.2 MB) bounds one transaction
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBaseTableSize(2 << 20).
		WithBaseLevelSize(8 << 20).
		WithValueLogFileSize(16 << 20). // mmapped: keep address space small on 32-bit
		WithValueLogMaxEntries(200_000).
		WithValueThreshold(1 << 10). // a reading is ~60 B: it lives in the LSM tree
		WithBlockCacheSize(4 << 20).
		WithIndexCacheSize(2 << 20). // bounded; 0 would keep every index in RAM
		WithNumCompactors(2).        // the minimum Badger accepts
		WithNumGoroutines(2).
		WithCompression(options.Snappy).
		WithMetricsEnabled(false).
		WithDetectConflicts(false). // one writer, serialised by the buffer
		WithSyncWrites(false).      // synced explicitly every sync interval
		WithLogger(slogBadger{log})
	if strconv.IntSize == 32 {
		o = for32Bit(o)
	}
	return o
}

// for32Bit works around ristretto's z.Allocator on 32-bit platforms (v2.2.0,
// the version Badger v4.9.6 pulls in; still present in v2.4.2): once an
// allocator grows past its first buffer it computes the next position as
// (bufIdx+1)<<32 in a 32-bit int, which is 0, and hands out memory it has
// already handed out. Badger's table builder takes every block (and every
// compressed copy) from an allocator whose first buffer is 2 × the table
// size, so a table that outgrows it is written corrupt, and its readings
// vanish at the next compaction (TestReadingsSurviveFlushesAndCompaction
// under qemu-arm: all 60,000 lost). The fix keeps every table inside the
// first buffer:
//   - no compression: a compressed copy of each block would add ~1.2× the
//     data to the same allocator;
//   - tables at least as large as a memtable: a flush writes the whole
//     memtable (up to ~1.3 × MemTableSize of entries) into one L0 table,
//     whose allocator is then 2 × BaseTableSize ≥ 2 × MemTableSize;
//     compaction tables stop at 95% of their size.
//
// Memtables shrink to 4 MB to keep those tables and their allocators small
// on a 512 MB, 32-bit gateway. The cost is disk: ~4× more per reading than
// Snappy (docs/buffer.md).
func for32Bit(o badger.Options) badger.Options {
	return o.WithCompression(options.None).
		WithMemTableSize(4 << 20).
		WithBaseTableSize(4 << 20).
		WithBaseLevelSize(16 << 20)
}

// slogBadger routes Badger's logging to slog. Badger is chatty at INFO
// (every compaction); only warnings and errors reach the agent's log.
type slogBadger struct{ l *slog.Logger }

func (s slogBadger) Errorf(f string, a ...any)   { s.l.Error("badger: " + trim(fmt.Sprintf(f, a...))) }
func (s slogBadger) Warningf(f string, a ...any) { s.l.Warn("badger: " + trim(fmt.Sprintf(f, a...))) }
func (s slogBadger) Infof(f string, a ...any) {
	if s.l.Enabled(context.Background(), slog.LevelDebug-4) {
		s.l.Debug("badger: " + trim(fmt.Sprintf(f, a...)))
	}
}
func (s slogBadger) Debugf(string, ...any) {}

func trim(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}

// badgerStore is the store on Badger: an LSM tree whose writes go to a
// memtable and an mmapped write-ahead log, synced by the buffer every sync
// interval.
type badgerStore struct {
	db  *badger.DB
	dir string
	c   options.CompressionType
	log *slog.Logger

	// backMu guards backed and backedAt: the memtable write-ahead files
	// whose blocks are reserved.
	backMu   sync.Mutex
	backed   map[string]bool
	backedAt time.Time
}

func openBadger(dir string, log *slog.Logger, tune func(badger.Options) badger.Options) (*badgerStore, error) {
	bo := BadgerOptions(dir, log)
	if tune != nil {
		bo = tune(bo)
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("open badger in %s: %w", dir, err)
	}
	s := &badgerStore{db: db, dir: dir, c: bo.Compression, log: log, backed: map[string]bool{}}
	s.backWAL(true)
	return s, nil
}

// backWALEvery bounds how often the directory is listed for a new memtable
// file (Badger starts one every few MB written).
const backWALEvery = time.Second

// backWAL reserves the disk blocks of Badger's memtable files (*.mem).
// Badger creates them sparse, at twice the memtable size, and writes them
// through mmap: a write to a page the file system cannot back (a full disk)
// kills the process with SIGBUS instead of returning an error. Reserved
// blocks make every write into the current memtable safe whatever happens
// to the free space afterwards. A failure (no space left) is logged; the
// buffer's free-space floor keeps it from writing meanwhile.
func (s *badgerStore) backWAL(force bool) {
	s.backMu.Lock()
	defer s.backMu.Unlock()
	if !force && time.Since(s.backedAt) < backWALEvery {
		return
	}
	s.backedAt = time.Now()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	live := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".mem") {
			continue
		}
		live[name] = true
		if s.backed[name] {
			continue
		}
		f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_RDWR, 0)
		if err != nil {
			continue
		}
		info, err := f.Stat()
		if err == nil {
			err = allocate(f, info.Size())
		}
		f.Close()
		if err != nil {
			s.log.Warn("cannot reserve disk blocks for Badger's write-ahead file", "file", name, "err", err)
			continue
		}
		s.backed[name] = true
	}
	for name := range s.backed {
		if !live[name] {
			delete(s.backed, name)
		}
	}
}

func badgerErr(err error) error {
	if errors.Is(err, badger.ErrDBClosed) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

func (s *badgerStore) apply(puts []kv, deletes [][]byte) error {
	defer s.backWAL(false)
	return badgerErr(s.db.Update(func(txn *badger.Txn) error {
		for _, p := range puts {
			if err := txn.Set(p.key, p.val); err != nil {
				return err
			}
		}
		for _, k := range deletes {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}))
}

func (s *badgerStore) scan(from []byte, limit int, fn func(k, v []byte) error) error {
	if limit <= 0 {
		return nil
	}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixReading}, PrefetchValues: true, PrefetchSize: min(limit, 100)})
		defer it.Close()
		n := 0
		for it.Seek(from); it.Valid() && n < limit; it.Next() {
			item := it.Item()
			if err := item.Value(func(v []byte) error { return fn(item.Key(), v) }); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if errors.Is(err, errStopScan) {
		return nil
	}
	return badgerErr(err)
}

func (s *badgerStore) sync() error { return badgerErr(s.db.Sync()) }

func (s *badgerStore) diskBytes() int64 { return dirSize(s.dir) }

// maintain runs value-log GC until it reclaims nothing.
func (s *badgerStore) maintain() {
	for s.db.RunValueLogGC(0.5) == nil {
		// Each successful run rewrote one file; try the next.
	}
}

func (s *badgerStore) liveShare() float64 { return liveShare(s.c) }

func (s *badgerStore) close() error { return s.db.Close() }
