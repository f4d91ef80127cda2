package buffer

import (
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Option changes how a Buffer is opened.
type Option func(*settings)

type settings struct {
	syncInterval time.Duration
	gcInterval   time.Duration
	reserve      uint64
	quotaBytes   int64
	log          *slog.Logger
	tune         func(badger.Options) badger.Options
	minFree      int64
	freeBytes    func(dir string) (int64, error)
	quarantine   bool
	backend      Backend
	forceBadger  bool
	shared       *Shared
	namespace    string
}

// WithSyncInterval sets how often appended readings are fsynced (default
// 1 s). It bounds what a power cut loses.
func WithSyncInterval(d time.Duration) Option { return func(s *settings) { s.syncInterval = d } }

// WithGCInterval sets how often value-log garbage collection and the quota
// check run (default 1 min).
func WithGCInterval(d time.Duration) Option { return func(s *settings) { s.gcInterval = d } }

// WithReserve sets how many sequence numbers are reserved in the state file
// at a time (default 1000). Larger means fewer state writes and bigger gaps
// after a crash.
func WithReserve(n uint64) Option { return func(s *settings) { s.reserve = max(n, 1) } }

// WithQuota bounds the buffer's size on disk in bytes (0 = unbounded).
func WithQuota(bytes int64) Option { return func(s *settings) { s.quotaBytes = bytes } }

// WithBadgerTuning adjusts the Badger options after BadgerOptions, e.g. the
// simulator shrinks memtables further to run hundreds of buffers in one
// process. The bolt backend ignores it.
func WithBadgerTuning(fn func(badger.Options) badger.Options) Option {
	return func(s *settings) { s.tune = fn }
}

// WithMinFree sets the free space (bytes) the file system must keep for
// Badger's memtable flushes and compactions; below it Append refuses new
// readings with ErrDiskFull (default 64 MiB).
func WithMinFree(bytes int64) Option { return func(s *settings) { s.minFree = bytes } }

// WithQuarantine makes Open move a buffer directory Badger cannot open
// (corrupted by a power cut: badger #2000, #1954) aside, to
// <dir>.corrupt-<time>, and start an empty buffer, instead of failing. A
// gateway then keeps metering after the worst power cut; the sequence
// counter lives in the state directory, so numbers still never repeat.
// A directory locked by another process or unreadable for lack of
// permission is never quarantined.
func WithQuarantine(on bool) Option { return func(s *settings) { s.quarantine = on } }

// WithBackend selects the storage engine (default BackendAuto: bolt on
// 32-bit platforms, Badger on 64-bit ones). Open refuses BackendBadger on
// a 32-bit platform with ErrBadgerOn32Bit: Badger loses data there.
func WithBackend(b Backend) Option { return func(s *settings) { s.backend = b } }

// WithBadgerDespiteDataLoss lets Open use Badger on a 32-bit platform,
// where it is known to lose every reading in a flushed table. Only for
// reproducing that loss (edge/soak -soak.badger); never for the agent.
func WithBadgerDespiteDataLoss() Option { return func(s *settings) { s.forceBadger = true } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.log = l } }
