package local

import (
	"log/slog"
	"time"
)

// Option changes how a Log is opened.
type Option func(*settings)

type settings struct {
	partitions     int
	segmentBytes   int64
	maxRecordBytes int
	inflightBytes  int64
	groups         []string
	retentionAge   time.Duration
	retentionBytes int64
	commitInterval time.Duration
	indexInterval  int64
	readBuffer     int
	log            *slog.Logger
	now            func() time.Time
}

func defaults() settings {
	return settings{
		segmentBytes:   64 << 20,
		maxRecordBytes: 1 << 20,
		inflightBytes:  32 << 20,
		commitInterval: time.Second,
		indexInterval:  64 << 10,
		readBuffer:     1 << 20,
		log:            slog.Default(),
		now:            time.Now,
	}
}

// WithPartitions sets the number of partitions. A new log needs it (default:
// the number of CPUs, as the collector's default); an existing log keeps the
// count it was created with, and Open fails if this option asks for another.
func WithPartitions(n int) Option { return func(s *settings) { s.partitions = n } }

// WithSegmentBytes sets the size at which a partition's active segment file
// is closed and a new one started (default 64 MiB). Retention deletes whole
// segments, so a partition holds up to one segment more than its retention.
func WithSegmentBytes(n int64) Option { return func(s *settings) { s.segmentBytes = n } }

// WithMaxRecordBytes bounds a record's key plus value (default 1 MiB);
// Append refuses larger ones with ErrTooLarge.
func WithMaxRecordBytes(n int) Option { return func(s *settings) { s.maxRecordBytes = n } }

// WithInflightBytes bounds the bytes appended but not yet durable, over all
// partitions (default 32 MiB). Append blocks while it is reached.
func WithInflightBytes(n int64) Option { return func(s *settings) { s.inflightBytes = n } }

// WithConsumers registers the consumer groups whose commits gate trimming: a
// segment is deleted once every group has committed past its last record.
// Commit refuses groups not registered. With no group registered, only
// retention deletes segments.
func WithConsumers(groups ...string) Option {
	return func(s *settings) { s.groups = append(s.groups, groups...) }
}

// WithRetention deletes segments whose newest record is older than d, even
// if a group has not consumed them (0, the default, keeps them). An idle
// partition's active segment is closed once its newest record is that old, so
// it is deleted too.
func WithRetention(d time.Duration) Option { return func(s *settings) { s.retentionAge = d } }

// WithRetentionBytes deletes a partition's oldest segments, consumed or
// not, while its segments total more than n bytes (0, the default, keeps
// them). The active segment is never deleted: a partition stays below
// n + the segment size.
func WithRetentionBytes(n int64) Option { return func(s *settings) { s.retentionBytes = n } }

// WithCommitInterval sets how often changed committed offsets are written to
// disk (default 1 s; also at Close). A commit lost in a crash only delays
// trimming until the group commits again.
func WithCommitInterval(d time.Duration) Option { return func(s *settings) { s.commitInterval = d } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.log = l } }

// withClock replaces the wall clock (append times, retention); for tests.
func withClock(now func() time.Time) Option { return func(s *settings) { s.now = now } }
