package wire

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"google.golang.org/protobuf/proto"
)

// SchemaVersion is the version of the messages this build writes and the
// only one it accepts.
const SchemaVersion = 1

// MaxReadingsPerBatch bounds a batch so a hostile or broken sender cannot make
// the collector allocate without limit.
const MaxReadingsPerBatch = 100_000

// MaxChannelLen bounds channel names (they become storage keys and labels).
const MaxChannelLen = 64

// Errors a decoder returns, wrapped with detail. Callers classify with errors.Is.
var (
	ErrMalformed     = errors.New("malformed payload")
	ErrSchemaVersion = errors.New("unsupported schema version")
	ErrInvalid       = errors.New("invalid content")
)

// EncodeBatch stamps the current schema version and marshals b.
func EncodeBatch(b *Batch) ([]byte, error) {
	b.SchemaVersion = SchemaVersion
	out, err := proto.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	return out, nil
}

// DecodeBatch unmarshals and validates a batch. A returned error wraps one of
// ErrMalformed, ErrSchemaVersion or ErrInvalid.
func DecodeBatch(data []byte) (*Batch, error) {
	var b Batch
	if err := proto.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if b.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("%w: got %d, want %d", ErrSchemaVersion, b.SchemaVersion, SchemaVersion)
	}
	if err := ValidateBatch(&b); err != nil {
		return nil, err
	}
	return &b, nil
}

// ValidateBatch checks the invariants a collector relies on. It does not check
// the schema version (DecodeBatch does).
func ValidateBatch(b *Batch) error {
	if err := ValidateDeviceID(b.DeviceId); err != nil {
		return fmt.Errorf("%w: device_id: %v", ErrInvalid, err)
	}
	if len(b.Readings) == 0 {
		return fmt.Errorf("%w: batch has no readings", ErrInvalid)
	}
	if len(b.Readings) > MaxReadingsPerBatch {
		return fmt.Errorf("%w: batch has %d readings, limit %d", ErrInvalid, len(b.Readings), MaxReadingsPerBatch)
	}
	for i, r := range b.Readings {
		if err := validateReading(r); err != nil {
			return fmt.Errorf("%w: reading %d (seq %d): %v", ErrInvalid, i, r.GetSeq(), err)
		}
	}
	return nil
}

func validateReading(r *Reading) error {
	if r == nil {
		return errors.New("nil reading")
	}
	return validateFields(r.Channel, r.Quantity, r.Value, r.TimeQuality, r.TimeErrorNs)
}

// validateFields holds the reading rules DecodeBatch and ScanBatch share.
func validateFields[S ~string | ~[]byte](channel S, q Quantity, v float64, tq TimeQuality, errNs int64) error {
	bad := len(channel) == 0 || len(channel) > MaxChannelLen
	for i := 0; i < len(channel) && !bad; i++ {
		switch channel[i] {
		case '/', '#', '+', '|', 0:
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("channel %q: must be 1..%d characters without / # + |", channel, MaxChannelLen)
	}
	if _, ok := Quantity_name[int32(q)]; !ok || q == Quantity_QUANTITY_UNSPECIFIED {
		return fmt.Errorf("quantity %d unknown", q)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("value %v is not finite", v)
	}
	if _, ok := TimeQuality_name[int32(tq)]; !ok || tq == TimeQuality_TIME_QUALITY_UNSPECIFIED {
		return fmt.Errorf("time quality %d unknown", tq)
	}
	if errNs < 0 {
		return fmt.Errorf("negative time error %d", errNs)
	}
	return nil
}

// ValidateDeviceID accepts ids that are safe as an MQTT topic level and a
// storage key: 1..128 characters of [A-Za-z0-9._-].
func ValidateDeviceID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("%q: must be 1..128 characters", id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%q: character %q not allowed (use A-Z a-z 0-9 . _ -)", id, c)
		}
	}
	return nil
}

// EncodeAck stamps the schema version and marshals a.
func EncodeAck(a *Ack) ([]byte, error) {
	a.SchemaVersion = SchemaVersion
	out, err := proto.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode ack: %w", err)
	}
	return out, nil
}

// DecodeAck unmarshals and validates an ack.
func DecodeAck(data []byte) (*Ack, error) {
	var a Ack
	if err := proto.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if a.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("%w: got %d, want %d", ErrSchemaVersion, a.SchemaVersion, SchemaVersion)
	}
	if err := ValidateDeviceID(a.DeviceId); err != nil {
		return nil, fmt.Errorf("%w: device_id: %v", ErrInvalid, err)
	}
	for _, r := range a.Ranges {
		if r.Last < r.First {
			return nil, fmt.Errorf("%w: range %d..%d is reversed", ErrInvalid, r.First, r.Last)
		}
	}
	return &a, nil
}

// EncodeStatus stamps the schema version and marshals s.
func EncodeStatus(s *Status) ([]byte, error) {
	s.SchemaVersion = SchemaVersion
	out, err := proto.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode status: %w", err)
	}
	return out, nil
}

// DecodeStatus unmarshals and validates a status message.
func DecodeStatus(data []byte) (*Status, error) {
	var s Status
	if err := proto.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if s.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("%w: got %d, want %d", ErrSchemaVersion, s.SchemaVersion, SchemaVersion)
	}
	if err := ValidateDeviceID(s.DeviceId); err != nil {
		return nil, fmt.Errorf("%w: device_id: %v", ErrInvalid, err)
	}
	return &s, nil
}

// RangesOf compresses sequence numbers (in any order, duplicates allowed)
// into sorted, merged inclusive ranges.
func RangesOf(seqs []uint64) []*SeqRange {
	if len(seqs) == 0 {
		return nil
	}
	sorted := append([]uint64(nil), seqs...)
	slices.Sort(sorted)
	out := []*SeqRange{{First: sorted[0], Last: sorted[0]}}
	for _, s := range sorted[1:] {
		last := out[len(out)-1]
		switch {
		case s <= last.Last:
		case s == last.Last+1:
			last.Last = s
		default:
			out = append(out, &SeqRange{First: s, Last: s})
		}
	}
	return out
}
