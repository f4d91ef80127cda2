// Package collector assembles the gridedge collector: an MQTT client on a
// shared subscription feeding the ingest pipeline, the Badger store, the
// end-to-end ack publisher, the event-time windowing engine following the
// store's ingest log, the HTTP API and, optionally, an embedded broker.
//
// New builds everything and binds the HTTP listener (and the embedded
// broker's listener), so HTTPAddr is known before Run; Run restores the
// windowing engine and replays the log after its checkpoint, connects to the
// broker and serves until its context ends, then stops ingest, applies and
// commits what was stored, and shuts everything down.
//
// The cluster roles are built by NewIntake (MQTT to a Kafka readings
// topic), NewWorker (a consumer-group member whose partition workers
// commit state changelog, outputs and input offset in one Kafka
// transaction, and take partitions over by replaying the changelog) and
// NewSink (the output topics, read_committed, into an embedded store that
// serves the API for every partition).
package collector
