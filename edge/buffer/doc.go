// Package buffer is the agent's durable outbox: a Badger-backed queue of
// readings ordered by a per-device sequence number.
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
// Badger is tuned for a 512 MB Pi Zero and 32-bit ARM (see Options and
// docs/buffer.md): small memtables and value-log files, bounded caches, and
// readings small enough to live in the LSM tree. Writes are not synced one by
// one; the buffer calls db.Sync every sync interval and on Close, which
// bounds what a power cut can lose to one sync interval of readings.
package buffer
