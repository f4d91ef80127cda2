// Package readlog defines the readings log: the durable, partitioned input of
// the collector's workers. Intake appends each accepted batch to the partition
// of its device and acknowledges the device only once the log holds it
// durably; one worker per partition consumes it in offset order.
//
// Two implementations satisfy Log: cloud/readlog/local (segment files on the
// collector's disk, fsynced; the default, one process) and a Kafka one (the
// cluster wiring). Callers depend on this package only.
package readlog

import (
	"context"
	"errors"
	"time"
)

// ErrClosed is returned by operations on a closed log or reader.
var ErrClosed = errors.New("readlog: closed")

// ErrTrimmed is returned by Open when the requested offset has already been
// removed by retention; the error says from which offset data is available.
var ErrTrimmed = errors.New("readlog: offset trimmed")

// Record is one entry of a partition.
type Record struct {
	Partition int
	// Offset is assigned by the log: it increases by one per record within
	// a partition, starting at 0, and is never reused.
	Offset int64
	// Key is the device key the record was partitioned by.
	Key []byte
	// Value is the caller's payload, opaque to the log.
	Value []byte
	// Time is when the record was appended (wall clock of the appender).
	Time time.Time
}

// Log is a partitioned, durable, append-only log.
//
// Guarantees every implementation gives:
//   - An Append's done callback reports a nil error only once the record is
//     durable (local: fsynced; Kafka: acknowledged by all in-sync replicas),
//     and after the callbacks of earlier Appends to the same partition.
//   - Readers see only durable records, in offset order, each once.
//   - A record stays readable until every consumer has committed past it
//     (Commit) and, independently of that, is removed when it falls outside
//     the configured retention.
type Log interface {
	// Partitions is the number of partitions, fixed for the life of the log.
	Partitions() int
	// Append appends value to partition p. done is called exactly once, from
	// another goroutine, with the record's offset once it is durable, or
	// with an error (nothing was stored, or it is unknown whether it was: the
	// caller must not acknowledge it). Append may block while the log's
	// in-flight bound is reached; it returns an error (and never calls done)
	// only when the log is closed, ctx ends before the record is queued, or
	// the append is invalid (p out of range, record over the size limit).
	Append(ctx context.Context, p int, key, value []byte, done func(offset int64, err error)) error
	// Open returns a reader of partition p positioned at offset from (the
	// next record read has offset >= from). from == the partition's end
	// reads only new records.
	Open(p int, from int64) (Reader, error)
	// Commit records that consumer group has processed partition p up to
	// (not including) offset; records below the smallest committed offset of
	// every registered group may be deleted.
	Commit(group string, p int, offset int64) error
	// Close stops the log; pending appends complete with ErrClosed or succeed.
	Close() error
}

// Reader reads one partition in offset order. It is not safe for concurrent
// use.
type Reader interface {
	// Fetch blocks until at least one durable record at or after the reader's
	// position exists (or ctx ends), then returns up to max records and
	// advances past them. The returned records (and their Key and Value
	// slices) are valid only until the next Fetch or Close.
	Fetch(ctx context.Context, max int) ([]Record, error)
	// Close releases the reader's files.
	Close() error
}
