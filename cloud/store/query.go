package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gridedge/gridedge/cloud/store/seriesblock"
	"github.com/gridedge/gridedge/shared/wire"
)

// Device returns what is known about one device; ok is false when no batch
// of it has been stored.
func (s *Store) Device(id string) (info DeviceInfo, ok bool, err error) {
	ok, err = s.getJSON(deviceKey(prefixDevice, id), &info)
	if err != nil {
		return DeviceInfo{}, false, fmt.Errorf("store: device %s: %w", id, err)
	}
	return info, ok, nil
}

// Devices lists every device that has sent an accepted batch, by id.
func (s *Store) Devices() ([]DeviceInfo, error) {
	var out []DeviceInfo
	err := s.scan([]byte{prefixDevice}, func(k, v []byte) error {
		var info DeviceInfo
		if err := json.Unmarshal(v, &info); err != nil {
			return fmt.Errorf("decode %q: %w", k, err)
		}
		out = append(out, info)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: devices: %w", err)
	}
	return out, nil
}

// Statuses returns the latest status of every device that sent one, by device id.
func (s *Store) Statuses() (map[string]Status, error) {
	out := map[string]Status{}
	err := s.scan([]byte{prefixStatus}, func(k, v []byte) error {
		var st Status
		if err := json.Unmarshal(v, &st); err != nil {
			return fmt.Errorf("decode %q: %w", k, err)
		}
		out[st.Device] = st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: statuses: %w", err)
	}
	return out, nil
}

// Reading is one stored reading.
type Reading struct {
	Device      string
	Channel     string
	Quantity    wire.Quantity
	Time        time.Time
	SeqEpoch    uint64
	Seq         uint64
	Value       float64
	TimeQuality wire.TimeQuality
	TimeErrorNs int64
	Received    time.Time
}

// MaxBlockSpan bounds how far a block's readings lie from the time of its
// first reading (either way): a writer seals a block before breaking it, so
// a time-range query reads only the blocks keyed within the range widened
// by it.
const MaxBlockSpan = time.Hour

// Readings returns the stored readings of one series with from <= time < to
// (zero bounds are open), in time order. fn is called for each; returning an
// error stops the scan and is returned. Memory is bounded by one block's
// readings at a time plus the readings of overlapping blocks (a series
// replayed out of order).
func (s *Store) Readings(device, channel string, q wire.Quantity, from, to time.Time, fn func(Reading) error) error {
	prefix := seriesPrefix(prefixBlock, device, channel, q)
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !from.IsZero() {
		lo = from.UnixNano()
	}
	if !to.IsZero() {
		hi = to.UnixNano()
	}
	lower := bytes.Clone(prefix)
	if lo > math.MinInt64+int64(MaxBlockSpan) {
		lower = binary.BigEndian.AppendUint64(lower, orderedTime(lo-int64(MaxBlockSpan)))
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("store: readings: %w", err)
	}
	defer it.Close()
	// Blocks are merged in time order: readings are held until no later
	// block can hold an earlier one (its key time - span > the reading).
	var pending []seriesblock.Point
	emit := func(until int64) error {
		sortPoints(pending)
		n := 0
		for n < len(pending) && pending[n].TimeNs < until {
			p := pending[n]
			n++
			if p.TimeNs < lo || p.TimeNs >= hi {
				continue
			}
			err := fn(Reading{
				Device: device, Channel: channel, Quantity: q, Time: time.Unix(0, p.TimeNs).UTC(),
				SeqEpoch: p.Epoch, Seq: p.Seq, Value: p.Value, TimeQuality: wire.TimeQuality(p.Quality),
				TimeErrorNs: p.ErrNs, Received: time.Unix(0, p.ReceivedNs).UTC(),
			})
			if err != nil {
				return err
			}
		}
		pending = append(pending[:0], pending[n:]...)
		return nil
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()[len(prefix):]
		if len(k) != 24 {
			return errBadKey
		}
		first := timeFromOrdered(binary.BigEndian.Uint64(k))
		if first-int64(MaxBlockSpan) >= hi {
			break
		}
		if err := emit(first - int64(MaxBlockSpan)); err != nil {
			return err
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		if pending, err = seriesblock.AppendPoints(pending, v); err != nil {
			return fmt.Errorf("store: block of %s/%s: %w", device, channel, err)
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	return emit(math.MaxInt64)
}

func sortPoints(ps []seriesblock.Point) {
	slices.SortStableFunc(ps, func(a, b seriesblock.Point) int { return cmp.Compare(a.TimeNs, b.TimeNs) })
}

// DeadLetter is a payload the collector could not accept, kept for diagnosis.
type DeadLetter struct {
	ID       uint64    `json:"id"`
	Reason   string    `json:"reason"`
	Detail   string    `json:"detail"`
	Topic    string    `json:"topic"`
	Received time.Time `json:"received"`
	Payload  []byte    `json:"payload"` // raw bytes (base64 in JSON)
}

func deadLetterKey(received time.Time, id uint64) []byte {
	k := binary.BigEndian.AppendUint64([]byte{prefixDeadLetter}, orderedTime(received.UnixNano()))
	return binary.BigEndian.AppendUint64(k, id)
}

// PutDeadLetter durably records a rejected payload and returns its id.
func (s *Store) PutDeadLetter(dl DeadLetter) (uint64, error) {
	dl.ID = s.nextDLQ.Add(1)
	dl.Received = dl.Received.UTC()
	v, err := json.Marshal(dl)
	if err != nil {
		return 0, fmt.Errorf("store: dead letter: %w", err)
	}
	if err := s.db.Set(deadLetterKey(dl.Received, dl.ID), v, s.wo); err != nil {
		return 0, fmt.Errorf("store: dead letter: %w", err)
	}
	return dl.ID, nil
}

// DeadLetters returns up to limit dead letters, newest first (limit 0 means 100).
func (s *Store) DeadLetters(limit int) ([]DeadLetter, error) {
	if limit <= 0 {
		limit = 100
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixDeadLetter}, UpperBound: []byte{prefixDeadLetter + 1}})
	if err != nil {
		return nil, fmt.Errorf("store: dead letters: %w", err)
	}
	defer it.Close()
	var out []DeadLetter
	for it.Last(); it.Valid() && len(out) < limit; it.Prev() {
		var dl DeadLetter
		if err := json.Unmarshal(it.Value(), &dl); err != nil {
			return nil, fmt.Errorf("store: decode dead letter: %w", err)
		}
		out = append(out, dl)
	}
	return out, it.Error()
}
