package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
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

// DeviceStatus returns a device's latest status; ok is false when it never
// sent one.
func (s *Store) DeviceStatus(id string) (st Status, ok bool, err error) {
	ok, err = s.getJSON(deviceKey(prefixStatus, id), &st)
	if err != nil {
		return Status{}, false, fmt.Errorf("store: status of %s: %w", id, err)
	}
	return st, ok, nil
}

// Devices calls fn, in device id order starting after the id after (""
// from the first), for every device that has sent an accepted batch or a
// status: info is nil for a device known only by its status, st nil for one
// that never sent a status. It holds one device at a time. fn's error stops
// the scan and is returned.
func (s *Store) Devices(after string, fn func(id string, info *DeviceInfo, st *Status) error) error {
	open := func(prefix byte) (*pebble.Iterator, error) {
		lower := deviceKey(prefix, after)
		if after != "" {
			lower = append(lower, 0)
		}
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte{prefix + 1}})
		if err != nil {
			return nil, fmt.Errorf("store: devices: %w", err)
		}
		it.First()
		return it, nil
	}
	infos, err := open(prefixDevice)
	if err != nil {
		return err
	}
	defer infos.Close()
	stats, err := open(prefixStatus)
	if err != nil {
		return err
	}
	defer stats.Close()
	// A merge of the two id-ordered key ranges.
	for infos.Valid() || stats.Valid() {
		var id string
		switch {
		case !stats.Valid():
			id = string(infos.Key()[1:])
		case !infos.Valid():
			id = string(stats.Key()[1:])
		default:
			id = min(string(infos.Key()[1:]), string(stats.Key()[1:]))
		}
		var info *DeviceInfo
		var st *Status
		if infos.Valid() && string(infos.Key()[1:]) == id {
			info = new(DeviceInfo)
			if err := json.Unmarshal(infos.Value(), info); err != nil {
				return fmt.Errorf("store: decode device %s: %w", id, err)
			}
			infos.Next()
		}
		if stats.Valid() && string(stats.Key()[1:]) == id {
			st = new(Status)
			if err := json.Unmarshal(stats.Value(), st); err != nil {
				return fmt.Errorf("store: decode status of %s: %w", id, err)
			}
			stats.Next()
		}
		if err := fn(id, info, st); err != nil {
			return err
		}
	}
	if err := errors.Join(infos.Error(), stats.Error()); err != nil {
		return fmt.Errorf("store: devices: %w", err)
	}
	return nil
}

// Status returns a device's latest stored status; ok is false when none.
func (s *Store) Status(id string) (st Status, ok bool, err error) {
	ok, err = s.getJSON(deviceKey(prefixStatus, id), &st)
	if err != nil {
		return Status{}, false, fmt.Errorf("store: status of %s: %w", id, err)
	}
	return st, ok, nil
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
	// Flags say why a stored reading was kept out of the windows.
	Flags Flags
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
			quality, flags := UnpackQuality(p.Quality)
			err := fn(Reading{
				Device: device, Channel: channel, Quantity: q, Time: time.Unix(0, p.TimeNs).UTC(),
				SeqEpoch: p.Epoch, Seq: p.Seq, Value: p.Value, TimeQuality: quality,
				TimeErrorNs: p.ErrNs, Received: time.Unix(0, p.ReceivedNs).UTC(), Flags: flags,
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

// SeriesPoints calls fn with the stored points of one series whose time is
// in [lo, hi], in no particular order, until fn returns false. Blocks are
// chosen by their keys and headers, so only blocks whose time range meets
// [lo, hi] are decoded. The worker uses it to compare a resent reading with
// the one stored under its identity.
func (s *Store) SeriesPoints(device, channel string, q wire.Quantity, lo, hi int64, fn func(seriesblock.Point) bool) error {
	prefix := seriesPrefix(prefixBlock, device, channel, q)
	lower := bytes.Clone(prefix)
	if lo > math.MinInt64+int64(MaxBlockSpan) {
		lower = binary.BigEndian.AppendUint64(lower, orderedTime(lo-int64(MaxBlockSpan)))
	}
	upper := prefixEnd(prefix)
	if hi < math.MaxInt64 {
		upper = binary.BigEndian.AppendUint64(bytes.Clone(prefix), orderedTime(hi+1))
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("store: series points: %w", err)
	}
	defer it.Close()
	more := true
	for it.First(); it.Valid() && more; it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("store: series points: %w", err)
		}
		info, err := seriesblock.ReadInfo(v)
		if err != nil {
			return fmt.Errorf("store: block of %s/%s: %w", device, channel, err)
		}
		if info.Points == 0 || info.MaxTime < lo || info.MinTime > hi {
			continue
		}
		err = seriesblock.Decode(v, func(p seriesblock.Point) bool {
			if p.TimeNs >= lo && p.TimeNs <= hi {
				more = fn(p)
			}
			return more
		})
		if err != nil {
			return fmt.Errorf("store: block of %s/%s: %w", device, channel, err)
		}
	}
	return it.Error()
}
