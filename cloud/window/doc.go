// Package window is gridedge's event-time windowing engine: it turns decoded,
// deduplicated readings into versioned window results.
//
// The engine keeps one event-time watermark per device (max event time minus
// the pipeline's out-of-orderness bound), so an offline gateway holds open only
// its own windows. A window fires (revision 1) when its device's watermark
// passes its end; a reading within the allowed lateness re-fires it with the
// next revision; a later reading goes to the late stream with the windows it
// would have belonged to. A device that stays silent for the idle timeout
// (measured on a processing-time clock the caller advances, never time.Now)
// has its open windows emitted as provisional results, replaced by the final
// result when its backlog arrives.
//
// Results are upserts keyed by (pipeline, key, window start): a sink that
// keeps the highest revision holds the current answer. The whole engine state
// serialises with Checkpoint and comes back with Restore, so a collector can
// store it atomically with the readings it has applied (see AppliedThrough).
//
// The engine is not safe for concurrent use: shard devices over engines (one
// per worker), which is how the collector partitions anyway.
//
// docs/windowing.md describes the semantics with worked examples.
package window
