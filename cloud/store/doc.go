// Package store is the collector's embedded store, on Pebble (an LSM tree
// without a value log, so deleted data is reclaimed by compaction): the
// state of each partition's worker and the default sink that serves the
// HTTP API.
//
// A worker writes everything one commit produces in one synced Pebble batch
// (Batch): its next input offset in the readings log, the deduplication
// range sets and window-engine states of the devices that changed, raw
// readings as compressed column blocks per series (cloud/store/seriesblock),
// result upserts (keeping the highest revision, every revision as history),
// the late stream, device counters and statuses. After a crash either all
// of a commit is stored or none of it, and the worker resumes from the
// stored offset: exactly once.
//
// Opened WithFeed, the same batch also appends the results feed
// (feed.go): numbered records of every result, late reading, device and
// status, per partition, that external sinks follow with cursors of their
// own (cloud/feed); it is trimmed below the lowest sink cursor and bounded
// by size and age.
//
// Every data class has a retention (Retention) enforced by Trim with range
// deletions followed by a compaction of the range, so the disk space is
// returned, not only the keys.
package store
