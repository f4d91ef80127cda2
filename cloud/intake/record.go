package intake

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Kind says what a readings-log record carries.
type Kind byte

const (
	// KindData is a validated data batch (wire.Batch bytes as received).
	KindData Kind = 1
	// KindStatus is a status message (wire.Status bytes as received). Statuses
	// travel in their device's partition, in order with its data.
	KindStatus Kind = 2
)

const recordVersion = 1

// ErrRecord is wrapped by DecodeRecord errors.
var ErrRecord = errors.New("intake: malformed log record")

// Record is the value intake appends to the readings log: the payload as
// the device sent it, with what only the receiving node knows.
type Record struct {
	Kind       Kind
	ReceivedNs int64
	Site       string
	Payload    []byte
}

// AppendRecord appends r's encoding to dst: version, kind, receive time
// (varint), site (length-prefixed), payload (the rest).
func AppendRecord(dst []byte, r Record) []byte {
	dst = append(dst, recordVersion, byte(r.Kind))
	dst = binary.AppendVarint(dst, r.ReceivedNs)
	dst = binary.AppendUvarint(dst, uint64(len(r.Site)))
	dst = append(dst, r.Site...)
	return append(dst, r.Payload...)
}

// DecodeRecord decodes a log record. Site and Payload alias b.
func DecodeRecord(b []byte) (Record, error) {
	if len(b) < 2 || b[0] != recordVersion {
		return Record{}, fmt.Errorf("%w: version", ErrRecord)
	}
	r := Record{Kind: Kind(b[1])}
	if r.Kind != KindData && r.Kind != KindStatus {
		return Record{}, fmt.Errorf("%w: kind %d", ErrRecord, b[1])
	}
	b = b[2:]
	var n int
	if r.ReceivedNs, n = binary.Varint(b); n <= 0 {
		return Record{}, fmt.Errorf("%w: receive time", ErrRecord)
	}
	b = b[n:]
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return Record{}, fmt.Errorf("%w: site", ErrRecord)
	}
	b = b[n:]
	r.Site, r.Payload = string(b[:l]), b[l:]
	return r, nil
}
