package wire

import (
	"fmt"
	"math"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// BatchHeader is what ScanBatch reads of a batch besides its readings.
// Strings alias the scanned bytes.
type BatchHeader struct {
	SchemaVersion   uint32
	DeviceID        string
	BootID          string
	SeqEpoch        uint64
	SentBootID      string
	SentMonoNs      int64
	SentWallNs      int64
	SentTimeQuality TimeQuality
	AgentVersion    string
	Readings        int
}

// ReadingView is one reading as ScanBatch reads it. Channel aliases the
// scanned bytes; the view is reused for the next reading.
type ReadingView struct {
	Seq         uint64
	Channel     []byte
	Quantity    Quantity
	Value       float64
	WallNs      int64
	MonoNs      int64
	TimeQuality TimeQuality
	TimeErrorNs int64
}

// Field numbers of Batch and Reading (gridedge.proto).
const (
	fBatchSchema = 1 + iota
	fBatchDevice
	fBatchBoot
	fBatchEpoch
	fBatchReadings
	fBatchSentBoot
	fBatchSentMono
	fBatchSentWall
	fBatchSentQuality
	fBatchAgent
)

const (
	fReadingSeq = 1 + iota
	fReadingChannel
	fReadingQuantity
	fReadingValue
	fReadingWall
	fReadingMono
	fReadingQuality
	fReadingError
)

// ScanBatch reads and validates a batch without allocating: it accepts
// exactly what DecodeBatch accepts, with errors wrapping the same
// ErrMalformed, ErrSchemaVersion or ErrInvalid, and calls fn with each
// reading in order (fn may be nil). The readings come before the batch is
// fully validated: on an error, discard what fn was given. An error from fn
// stops the scan and is returned as is.
func ScanBatch(data []byte, fn func(*ReadingView) error) (BatchHeader, error) {
	var h BatchHeader
	// The header fields may follow the readings on the wire, and a later
	// occurrence of a field replaces an earlier one: read the header first,
	// then validate and visit the readings.
	var strs [4][]byte // device, boot, sent boot, agent
	for b := data; len(b) > 0; {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return h, malformed(n)
		}
		b = b[n:]
		switch {
		case num == fBatchSchema && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return h, malformed(n)
			}
			h.SchemaVersion, b = uint32(v), b[n:]
		case (num == fBatchDevice || num == fBatchBoot || num == fBatchSentBoot || num == fBatchAgent) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return h, malformed(n)
			}
			if !utf8.Valid(v) {
				return h, errUTF8
			}
			switch num {
			case fBatchDevice:
				strs[0] = v
			case fBatchBoot:
				strs[1] = v
			case fBatchSentBoot:
				strs[2] = v
			default:
				strs[3] = v
			}
			b = b[n:]
		case num == fBatchEpoch && typ == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return h, malformed(n)
			}
			h.SeqEpoch, b = v, b[n:]
		case (num == fBatchSentMono || num == fBatchSentWall || num == fBatchSentQuality) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return h, malformed(n)
			}
			switch num {
			case fBatchSentMono:
				h.SentMonoNs = int64(v)
			case fBatchSentWall:
				h.SentWallNs = int64(v)
			default:
				h.SentTimeQuality = TimeQuality(int32(v))
			}
			b = b[n:]
		case num == fBatchReadings && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return h, malformed(n)
			}
			var rv ReadingView
			if err := scanReading(v, &rv); err != nil {
				return h, err
			}
			h.Readings++
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return h, malformed(n)
			}
			b = b[n:]
		}
	}
	h.DeviceID, h.BootID, h.SentBootID, h.AgentVersion = string(strs[0]), string(strs[1]), string(strs[2]), string(strs[3])
	if h.SchemaVersion != SchemaVersion {
		return h, fmt.Errorf("%w: got %d, want %d", ErrSchemaVersion, h.SchemaVersion, SchemaVersion)
	}
	if err := ValidateDeviceID(h.DeviceID); err != nil {
		return h, fmt.Errorf("%w: device_id: %v", ErrInvalid, err)
	}
	if h.Readings == 0 {
		return h, fmt.Errorf("%w: batch has no readings", ErrInvalid)
	}
	if h.Readings > MaxReadingsPerBatch {
		return h, fmt.Errorf("%w: batch has %d readings, limit %d", ErrInvalid, h.Readings, MaxReadingsPerBatch)
	}
	// Second pass: validate and visit the readings, in order.
	i := 0
	var rv ReadingView
	for b := data; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		b = b[n:]
		if num != fBatchReadings || typ != protowire.BytesType {
			b = b[protowire.ConsumeFieldValue(num, typ, b):]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		b = b[n:]
		rv = ReadingView{}
		_ = scanReading(v, &rv) // well-formed: checked in the first pass
		if err := validateView(&rv); err != nil {
			return h, fmt.Errorf("%w: reading %d (seq %d): %v", ErrInvalid, i, rv.Seq, err)
		}
		i++
		if fn != nil {
			if err := fn(&rv); err != nil {
				return h, err
			}
		}
	}
	return h, nil
}

// consumeTag is protowire.ConsumeTag refusing field numbers above the
// largest valid one, as the protobuf decoder does.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n >= 0 && num > protowire.MaxValidNumber {
		return 0, 0, -1
	}
	return num, typ, n
}

var errUTF8 = fmt.Errorf("%w: string field contains invalid UTF-8", ErrMalformed)

func malformed(n int) error {
	return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
}

func scanReading(b []byte, r *ReadingView) error {
	var channel []byte
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return malformed(n)
		}
		b = b[n:]
		switch {
		case num == fReadingChannel && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return malformed(n)
			}
			if !utf8.Valid(v) {
				return errUTF8
			}
			channel, b = v, b[n:]
		case num == fReadingValue && typ == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return malformed(n)
			}
			r.Value, b = math.Float64frombits(v), b[n:]
		case num >= fReadingSeq && num <= fReadingError && num != fReadingChannel && num != fReadingValue && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return malformed(n)
			}
			b = b[n:]
			switch num {
			case fReadingSeq:
				r.Seq = v
			case fReadingQuantity:
				r.Quantity = Quantity(int32(v))
			case fReadingWall:
				r.WallNs = int64(v)
			case fReadingMono:
				r.MonoNs = int64(v)
			case fReadingQuality:
				r.TimeQuality = TimeQuality(int32(v))
			case fReadingError:
				r.TimeErrorNs = int64(v)
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return malformed(n)
			}
			b = b[n:]
		}
	}
	r.Channel = channel
	return nil
}

// validateView applies validateReading's rules to a view.
func validateView(r *ReadingView) error {
	return validateFields(r.Channel, r.Quantity, r.Value, r.TimeQuality, r.TimeErrorNs)
}
