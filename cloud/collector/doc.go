// Package collector assembles the gridedge collector: an MQTT client on a
// shared subscription feeding the ingest pipeline, the Badger store, the
// end-to-end ack publisher, the HTTP API and, optionally, an embedded broker.
//
// New builds everything and binds the HTTP listener (and the embedded
// broker's listener), so HTTPAddr is known before Run; Run connects to the
// broker and serves until its context ends, then shuts everything down.
package collector
