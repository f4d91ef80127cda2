// Package ingest turns one received MQTT payload into a stored, acknowledged
// outcome, independent of the MQTT client so it can be tested and benchmarked
// on raw bytes.
//
// A data payload is decoded and validated (wire.DecodeBatch, and the device
// in the topic must be the batch's device). An accepted batch is applied to
// the store in one durable transaction and answered with a wire.Ack listing
// every seq of the batch, including readings that were already stored, so a
// resending agent can delete them. A payload that cannot be accepted is
// counted by reason and kept in the store's dead-letter area; it is never
// acknowledged.
package ingest
