// Package buffer is the agent's durable outbox: a queue of readings ordered
// by a per-device sequence number, on disk in Badger (64-bit platforms) or
// bbolt (32-bit platforms, where Badger loses data; see docs/soak.md).
//
// A reading is appended once, gets the next sequence number, and stays on
// disk until the collector acknowledges that it stored it durably; only then
// is it deleted (by acked sequence ranges). Sequence numbers never repeat:
// the counter and a random 64-bit sequence epoch live in a small state file
// in a separate state directory, written atomically and reserved in blocks
// ahead of use, so neither a crash nor a wiped buffer directory can hand out
// a number twice, and wiping everything yields a fresh epoch. The collector
// deduplicates on (device, seq_epoch, seq).
//
// The storage engine sits behind a small internal interface (ordered byte
// keys: atomic batches of puts and deletes, ascending scans, sync, size,
// maintenance); sequence numbers, the quota with its thinning and dropping,
// the free-space reserve, durability and crash recovery are implemented
// once above it. WithBackend selects the engine; the default, BackendAuto,
// picks bbolt when ints are 32 bits wide and Badger otherwise, and Open
// refuses Badger on 32-bit platforms.
//
// Badger is tuned for a 512 MB Pi Zero (see BadgerOptions and
// docs/buffer.md): small memtables and value-log files, bounded caches, and
// readings small enough to live in the LSM tree. Its writes are not synced
// one by one; the buffer calls Sync every sync interval and on Close, which
// bounds what a power cut can lose to one sync interval of readings. bbolt
// fsyncs every append before it returns (its crash consistency depends on
// it), so on 32-bit platforms a power cut loses nothing that Append
// accepted.
//
// An open buffer holds no goroutine: the periodic sync and the maintenance
// (garbage collection, quota) run from timers (maintain.go). Files:
// buffer.go (Open, Append, reads, Close), delete.go (acked deletion and the
// deletes waiting for space), options.go, maintain.go, quota.go, and one
// file per storage engine.
package buffer
