// Package postgres is the PostgreSQL sink: it follows the collector's
// results feed (cloud/feed) and writes window results (highest revision;
// every revision too with history on), the late stream, device counters
// and statuses into the gridedge schema of a PostgreSQL database
// (docs/postgres.md).
//
// Exactly once: each partition's position in the feed is written in the
// same transaction as the rows it covers, so after any crash — of the
// collector, of PostgreSQL, between or inside transactions — the sink
// resumes from what PostgreSQL committed.
//
// Decoupled: the sink runs on its own goroutines, one per feed partition,
// and nothing else waits for it. While PostgreSQL is down or slow the
// collector goes on ingesting, acknowledging, storing and serving; the feed
// keeps what the sink has not written (within the feed's retention), and
// the sink reconnects with backoff and catches up. A cursor trimmed by that
// retention makes the sink resynchronise from the store's current state.
//
// The schema is created and upgraded by versioned migrations embedded in
// the binary (Migrate), applied at the sink's first connection.
package postgres
