package soak

import "math/bits"

// Resource bounds of the soak; docs/soak.md derives each.
const (
	mib = 1 << 20
	// fixedDisk: the memtable write-ahead logs (up to NumMemtables+1 = 3
	// files, each preallocated to 2×MemTableSize = 16 MB), the value log
	// (one 2×16 MB preallocated file) and the manifest.
	fixedDisk = 3*16*mib + 32*mib + 1*mib
	// openFilesBound: the Go runtime, the test binary and the store's
	// files (a few dozen SSTs at most for a backlog of ~70 MB).
	openFilesBound = 256
	// mappedBound32: the whole process on 32-bit ARM, a third of the ~3 GB
	// a process can address there.
	mappedBound32 = 1024 * mib
	addressBits   = bits.UintSize
	// emptyDiskBound: an empty store at rest is the preallocated logs and
	// the tables compaction has not yet rewritten.
	emptyDiskBound = fixedDisk + 64*mib
)

// diskBound bounds both the disk space and the bytes mapped from the buffer
// directory (Badger maps only its own files). It is what the buffer may use on disk with a backlog of peak live
// bytes: the live data twice (tombstones of deleted readings and tables
// being compacted hold up to as much again until compaction drops them)
// plus the fixed overhead.
func diskBound(peakLive int64) int64 { return 2*peakLive + fixedDisk }
