package buffer

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

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
