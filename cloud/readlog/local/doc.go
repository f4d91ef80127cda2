// Package local is the embedded implementation of readlog.Log: each
// partition is a directory of segment files on the collector's disk, and an
// append is acknowledged only after it is fsynced.
//
// # Writing
//
// Append encodes the record into its partition's queue and returns; one
// syncer goroutine per partition writes everything queued with one write
// call, fsyncs, makes the records visible to readers and then calls the done
// callbacks in offset order (group commit). Bytes appended and not yet
// durable are bounded (WithInflightBytes): Append blocks, honouring its
// context, while the bound is reached. A failed write or fsync (a full disk)
// rolls the partition back to its last durable record and fails that batch
// and every record queued after it; offsets stay contiguous and the log
// keeps working when space returns.
//
// # Files
//
// <dir>/readlog.json holds the format and partition count; <dir>/LOCK is
// held (flock) while the log is open; <dir>/<p>/<base offset>.log are the
// segments; <dir>/<p>/committed.json the consumer groups' committed offsets.
// A segment starts with an 8-byte magic, then records framed as length,
// CRC-32C, offset, append time, key length, key, value. Segments roll at
// WithSegmentBytes (64 MiB).
//
// # Recovery
//
// Open scans the last segment of each partition and truncates it at the
// first torn or corrupt record: an acknowledged record is fsynced, a
// segment is fsynced before the next one is created, so only records never
// acknowledged can be cut.
//
// # Reading and trimming
//
// Readers see only durable records; an idle reader waits on a channel and
// does no work. Segments are deleted (their space returned) once every
// registered consumer group (WithConsumers) has committed past them, and
// regardless of that when older than WithRetention or beyond
// WithRetentionBytes; the latter count in Stats.Trimmed. Open below the first
// stored offset, or a Fetch whose next record was deleted, returns a
// *readlog.TrimmedError telling where data resumes: the consumer re-opens
// there and counts the loss.
//
// # Bounds
//
// Memory: the in-flight bound (twice, while a batch is written and the next
// one fills), a sparse index of one entry per 64 KiB per segment, and each
// reader's buffer (1 MiB, growing to one maximal record). Open files: the
// active segment per partition and one per open reader. Disk: what
// retention and the consumers' commits allow, plus one segment per
// partition.
package local
