// Package store is the collector's durable state on a local Badger database:
// readings (keyed for range scans by device, channel, quantity and time), the
// deduplication index on (device, seq_epoch, seq), the ingest log, per-device
// information, the latest status of every device, foundation tumbling-window
// results, the windowing engine's results, late stream and checkpoint, and
// the dead-letter area for payloads that could not be accepted.
//
// ApplyBatch is the one write path for readings: deduplication, reading
// inserts, ingest-log offsets, window updates and per-device counters happen
// in a single Badger transaction that is synced to disk before ApplyBatch
// returns. A crash at any point therefore leaves either all of a batch's
// effects or none of them, and a redelivered batch is recognised and not
// counted again.
//
// The ingest log numbers every deduplicated reading with an increasing
// offset; ReplayLog/Replay read it back in offset order up to LogEnd, the
// point below which no write is still in flight. EngineSink stores what the
// windowing engine (cloud/window/pipeline) produces — result upserts, every
// revision, late readings — with its checkpoint in one transaction, so the
// engine is exactly once across crashes.
//
// The small tumbling-window aggregator (count, sum, mean, min, max and a
// revision per window, closed by a per-device watermark, updated in the
// ingest transaction) serves /api/v1/windows; docs/collector.md says why it
// stays next to the engine.
package store
