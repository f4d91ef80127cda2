// Package feed is the results feed: what external sinks (PostgreSQL, a
// Kafka results topic) follow to receive everything the workers commit to
// the embedded store, each at its own pace and with its own cursor.
//
// The contract is a versioned record (Record, schema version 1, JSON; every
// field is described in docs/results.md for consumers in any language) of
// one of four kinds: a window result (every revision), a late reading, a
// device's counters, a device's status.
//
// Records are numbered per readings-log partition from 0 without gaps. They
// are appended by the store (cloud/store, WithFeed) inside the same synced
// batch as the commit that produced them, so the feed holds exactly what
// the store holds, no more and no less, whatever crashes. Any writer of
// results through store.Batch feeds sinks without code of its own.
//
// A sink reads a partition from its cursor (Source.Read), waits for more
// without polling (Source.Wait), and reports the cursor it has made durable
// on its side (Source.Commit); the feed deletes what every registered sink
// has. A retention (bytes per partition and age) bounds the feed when a sink
// is gone for good: a sink that finds its cursor trimmed gets ErrTrimmed
// and resynchronises from the store's current state (Source.Resync) rather
// than losing anything silently.
package feed
