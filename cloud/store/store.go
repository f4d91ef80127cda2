package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// formatVersion is written under the meta key; a store of another format is
// refused.
const formatVersion = 2

// ErrOldFormat is returned by Open for a data directory written by a
// collector release before the partitioned log (a Badger store).
var ErrOldFormat = errors.New("store: data directory written by an earlier collector release")

// Retention says how long each data class is kept. Zero keeps it forever.
type Retention struct {
	Readings    time.Duration // raw readings, by reading time
	Results     time.Duration // window results and their history, by window start
	Late        time.Duration // late stream, by reading time
	DeadLetters time.Duration // dead letters, by receive time
	// MaxDeadLetters bounds the dead-letter area by count (0: 10,000).
	MaxDeadLetters int
	// Conflicts is the retention of the conflict area, by receive time;
	// MaxConflicts bounds it by count (0: 10,000).
	Conflicts    time.Duration
	MaxConflicts int
}

// Option changes how a Store is opened.
type Option func(*settings)

type settings struct {
	logger       *slog.Logger
	cacheBytes   int64
	memtable     uint64
	sync         bool
	feed         bool
	feedRet      FeedRetention
	feedReadings bool
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.logger = l } }

// WithCacheBytes sets Pebble's block cache (default 32 MiB).
func WithCacheBytes(n int64) Option { return func(s *settings) { s.cacheBytes = n } }

// WithSync turns fsync of every commit on or off (default on). Off is only
// for benchmarks and tests that do not crash.
func WithSync(on bool) Option { return func(s *settings) { s.sync = on } }

// Store is the embedded store. It is safe for concurrent use.
type Store struct {
	db       *pebble.DB
	cache    *pebble.Cache
	dir      string
	log      *slog.Logger
	wo       *pebble.WriteOptions
	memtable uint64
	nextDLQ  atomic.Uint64
	dlqPuts  atomic.Uint64
	id       string
	feed     feedState
}

// Open opens (creating if needed) the store in dir. partitions is the
// number of readings-log partitions the store's state is kept for: a new
// store records it, an existing one must have been created with the same
// number (the log's partitioning is fixed), and Partitions reports it.
func Open(dir string, opts ...Option) (*Store, error) {
	cfg := settings{logger: slog.Default(), cacheBytes: 32 << 20, memtable: 8 << 20, sync: true}
	for _, o := range opts {
		o(&cfg)
	}
	if err := RefuseOldFormat(dir); err != nil {
		return nil, err
	}
	cache := pebble.NewCache(cfg.cacheBytes)
	db, err := pebble.Open(dir, &pebble.Options{
		Cache:                       cache,
		MemTableSize:                cfg.memtable,
		MemTableStopWritesThreshold: 4,
		MaxOpenFiles:                256,
		Logger:                      pebbleLogger{cfg.logger},
	})
	if err != nil {
		cache.Unref()
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	s := &Store{db: db, cache: cache, dir: dir, log: cfg.logger, wo: pebble.Sync, memtable: cfg.memtable}
	if !cfg.sync {
		s.wo = pebble.NoSync
	}
	if err := s.checkMeta(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.initDeadLetterID(); err != nil {
		s.Close()
		return nil, err
	}
	s.feed.on, s.feed.ret, s.feed.readings = cfg.feed, cfg.feedRet, cfg.feedReadings
	if err := s.initFeed(); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: feed: %w", err)
	}
	return s, nil
}

// RefuseOldFormat returns ErrOldFormat, with directions, when dir is a data
// directory of the earlier release (a Badger store: KEYREGISTRY, .vlog
// files).
func RefuseOldFormat(dir string) error {
	vlogs, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
	if _, err := os.Stat(filepath.Join(dir, "KEYREGISTRY")); err == nil || len(vlogs) > 0 {
		return fmt.Errorf("%w (%s): start this release with an empty -data-dir; "+
			"to carry the readings over, run `gridedge-collector migrate -from %s -to NEWDIR` first "+
			"(docs/collector.md, \"Upgrading\")", ErrOldFormat, dir, dir)
	}
	return nil
}

type meta struct {
	Format int `json:"format"`
	// ID names this store among others (a sink keeps its position per
	// store); generated when the store is created.
	ID string `json:"id,omitempty"`
}

func newStoreID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ID is the store's identity: random, fixed when the store was created
// (or first opened by a release that names stores).
func (s *Store) ID() string { return s.id }

func (s *Store) checkMeta() error {
	v, closer, err := s.db.Get([]byte{prefixMeta})
	if errors.Is(err, pebble.ErrNotFound) {
		s.id = newStoreID()
		b, _ := json.Marshal(meta{Format: formatVersion, ID: s.id})
		if err := s.db.Set([]byte{prefixMeta}, b, pebble.Sync); err != nil {
			return fmt.Errorf("store: write format: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: read format: %w", err)
	}
	var m meta
	err = json.Unmarshal(v, &m)
	closer.Close()
	if err != nil || m.Format != formatVersion {
		return fmt.Errorf("store: %s has store format %d, this release reads %d", s.dir, m.Format, formatVersion)
	}
	if m.ID == "" {
		m.ID = newStoreID()
		b, _ := json.Marshal(m)
		if err := s.db.Set([]byte{prefixMeta}, b, pebble.Sync); err != nil {
			return fmt.Errorf("store: write id: %w", err)
		}
	}
	s.id = m.ID
	return nil
}

// Close flushes and closes the database.
func (s *Store) Close() error {
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	s.cache.Unref()
	if err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Ping checks that the database answers reads.
func (s *Store) Ping() error {
	_, closer, err := s.db.Get([]byte{prefixPing})
	if err == nil {
		closer.Close()
		return nil
	}
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	return fmt.Errorf("store: ping: %w", err)
}

// DiskBytes is the size of the store's files: tables, the write-ahead log
// (bounded by the memtable size, whatever is stored) and obsolete files not
// yet deleted.
func (s *Store) DiskBytes() uint64 {
	m := s.db.Metrics()
	return m.DiskSpaceUsage()
}

// TableBytes is the size of the store's tables: what grows with the data
// stored and shrinks when retention deletes it and compaction drops it.
func (s *Store) TableBytes() int64 {
	m := s.db.Metrics()
	var n int64
	for _, l := range m.Levels {
		n += l.TablesSize
	}
	return n
}

// RawBytes estimates the disk space of the raw-reading blocks.
func (s *Store) RawBytes() (uint64, error) {
	n, err := s.db.EstimateDiskUsage([]byte{prefixBlock}, []byte{prefixBlock + 1})
	if err != nil {
		return 0, fmt.Errorf("store: raw bytes: %w", err)
	}
	return n, nil
}

// Compact compacts the whole key space, returning the space of deleted and
// overwritten data now (Pebble also does it on its own, over time).
func (s *Store) Compact() error {
	if err := s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
		return fmt.Errorf("store: compact: %w", err)
	}
	return nil
}

func (s *Store) getJSON(key []byte, v any) (bool, error) {
	b, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	return true, json.Unmarshal(b, v)
}

func (s *Store) initDeadLetterID() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixDeadLetter}, UpperBound: []byte{prefixDeadLetter + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	if it.Last() && len(it.Key()) == 17 {
		s.nextDLQ.Store(binary.BigEndian.Uint64(it.Key()[9:]))
	}
	return it.Error()
}

type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(f string, a ...any)  { p.l.Debug("pebble: " + fmt.Sprintf(f, a...)) }
func (p pebbleLogger) Errorf(f string, a ...any) { p.l.Error("pebble: " + fmt.Sprintf(f, a...)) }
func (p pebbleLogger) Fatalf(f string, a ...any) {
	p.l.Error("pebble: fatal: " + fmt.Sprintf(f, a...))
	os.Exit(1)
}
