// Package store is the collector's durable state on a local Badger database:
// readings (keyed for range scans by device, channel, quantity and time), the
// deduplication index on (device, seq_epoch, seq), per-device information, the
// latest status of every device, foundation tumbling-window results and the
// dead-letter area for payloads that could not be accepted.
//
// ApplyBatch is the one write path for readings: deduplication, reading
// inserts, window updates and per-device counters happen in a single Badger
// transaction that is synced to disk before ApplyBatch returns. A crash at any
// point therefore leaves either all of a batch's effects or none of them, and a
// redelivered batch is recognised and not counted again.
//
// The tumbling-window aggregator here is deliberately small (count, sum, mean,
// min, max and a revision per window, closed by a per-device watermark); the
// full event-time windowing engine lives elsewhere and will replace it.
package store
