package feed

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gridedge/gridedge/cloud/store"
)

// Version is the record schema version this package writes and reads.
const Version = 1

// Kind says what a record carries.
type Kind string

// Record kinds.
const (
	// KindResult: a window result, one record per revision. Sinks upsert on
	// (pipeline, device, channel, quantity, start) keeping the highest
	// revision.
	KindResult Kind = "result"
	// KindLate: a reading later than the allowed lateness of some windows
	// (the late stream).
	KindLate Kind = "late"
	// KindDevice: a device's counters changed (last seen, readings stored,
	// duplicates, series).
	KindDevice Kind = "device"
	// KindStatus: a device's status message (online, clock quality,
	// buffer backlog).
	KindStatus Kind = "status"
	// KindReading: a raw reading as stored (only when the collector feeds
	// raw readings).
	KindReading Kind = "reading"
)

// Record is one entry of the results feed, schema version 1. Exactly one
// of Result, Late, Device, Status and Reading is set, as Kind says.
type Record struct {
	V    int  `json:"v"`
	Kind Kind `json:"kind"`
	// Source is the identity of the store that wrote the record; Partition
	// and Seq its place in that store's feed (Seq numbers a partition's
	// records from 0 without gaps).
	Source    string `json:"source"`
	Partition int    `json:"partition"`
	Seq       uint64 `json:"seq"`
	// Resync marks a record of a resynchronisation: the current state
	// re-sent after a sink's cursor was trimmed (Seq is 0).
	Resync bool `json:"resync,omitempty"`
	// At is when the commit that wrote the record was made.
	At     time.Time           `json:"at"`
	Result *store.WindowResult `json:"result,omitempty"`
	Late   *store.LateReading  `json:"late,omitempty"`
	Device *store.DeviceInfo   `json:"device,omitempty"`
	Status *store.Status       `json:"status,omitempty"`
	// Reading is set on kind reading.
	Reading *store.RawReading `json:"reading,omitempty"`
}

// ErrBadRecord is wrapped by Decode's errors.
var ErrBadRecord = errors.New("feed: bad record")

// Device is the device the record is about (a Kafka key, say).
func (r *Record) DeviceID() string {
	switch {
	case r.Result != nil:
		return r.Result.Device
	case r.Late != nil:
		return r.Late.Device
	case r.Device != nil:
		return r.Device.ID
	case r.Status != nil:
		return r.Status.Device
	case r.Reading != nil:
		return r.Reading.Device
	}
	return ""
}

// Encode returns the record's JSON (schema version 1).
func Encode(r *Record) ([]byte, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("feed: encode: %w", err)
	}
	return b, nil
}

// Decode parses a record and checks its version and that it carries what
// its kind says.
func Decode(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	if err := r.validate(); err != nil {
		return Record{}, err
	}
	return r, nil
}

func (r *Record) validate() error {
	if r.V != Version {
		return fmt.Errorf("%w: schema version %d, this release reads %d", ErrBadRecord, r.V, Version)
	}
	set := 0
	for _, ok := range []bool{r.Result != nil, r.Late != nil, r.Device != nil, r.Status != nil, r.Reading != nil} {
		if ok {
			set++
		}
	}
	ok := set == 1
	switch r.Kind {
	case KindResult:
		ok = ok && r.Result != nil
	case KindLate:
		ok = ok && r.Late != nil
	case KindDevice:
		ok = ok && r.Device != nil && r.Device.ID != ""
	case KindStatus:
		ok = ok && r.Status != nil && r.Status.Device != ""
	case KindReading:
		ok = ok && r.Reading != nil && r.Reading.Device != ""
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrBadRecord, r.Kind)
	}
	if !ok {
		return fmt.Errorf("%w: kind %q needs exactly its own payload", ErrBadRecord, r.Kind)
	}
	return nil
}

// FromEntry turns a store feed entry of partition p of store source into
// a record.
func FromEntry(source string, p int, e store.FeedEntry) (Record, error) {
	r := Record{V: Version, Source: source, Partition: p, Seq: e.Seq, At: e.At}
	var err error
	switch e.Kind {
	case store.FeedResult:
		r.Kind, r.Result = KindResult, new(store.WindowResult)
		err = json.Unmarshal(e.Payload, r.Result)
	case store.FeedLate:
		r.Kind, r.Late = KindLate, new(store.LateReading)
		err = json.Unmarshal(e.Payload, r.Late)
	case store.FeedDevice:
		r.Kind, r.Device = KindDevice, new(store.DeviceInfo)
		err = json.Unmarshal(e.Payload, r.Device)
	case store.FeedStatus:
		r.Kind, r.Status = KindStatus, new(store.Status)
		err = json.Unmarshal(e.Payload, r.Status)
	case store.FeedReading:
		r.Kind, r.Reading = KindReading, new(store.RawReading)
		err = json.Unmarshal(e.Payload, r.Reading)
	default:
		return Record{}, fmt.Errorf("%w: partition %d entry %d: unknown kind %q", ErrBadRecord, p, e.Seq, e.Kind)
	}
	if err != nil {
		return Record{}, fmt.Errorf("%w: partition %d entry %d: %w", ErrBadRecord, p, e.Seq, err)
	}
	return r, nil
}
