// Package publish forwards buffered readings to the broker and deletes them
// only when the collector's end-to-end ack says they are stored.
//
// A PUBACK only means the broker has a message, and paho can report success
// for a publish lost across a reconnect, so nothing is deleted on PUBACK:
// the collector publishes a wire.Ack on the device's ack topic and the
// publisher deletes exactly the acked sequence ranges from the buffer. A
// batch with no ack after the ack timeout is sent again; the collector
// deduplicates on (device, seq_epoch, seq), so resending is always safe.
//
// The publisher owns its connection: QoS 1, a persistent session under a
// stable client id, reconnect with exponential backoff and jitter (so a
// fleet does not reconnect in lockstep after a broker restart), a retained
// birth message and last will on the status topic, and no token wait
// without a timeout.
package publish
