package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/gridedge/gridedge/shared/wire"
)

// Device returns what is known about one device; ok is false when the store
// has never accepted a batch from it.
func (s *Store) Device(id string) (info DeviceInfo, ok bool, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		info, err = getDevice(txn, id)
		return err
	})
	if err != nil {
		return DeviceInfo{}, false, fmt.Errorf("store: device %s: %w", id, err)
	}
	return info, info.ID != "", nil
}

// Devices lists every device that has sent an accepted batch, by id.
func (s *Store) Devices() ([]DeviceInfo, error) {
	var out []DeviceInfo
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixDevice}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var info DeviceInfo
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &info) }); err != nil {
				return fmt.Errorf("decode %q: %w", it.Item().Key(), err)
			}
			out = append(out, info)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: devices: %w", err)
	}
	return out, nil
}

// Status is the latest status message received from a device.
type Status struct {
	Device           string    `json:"device"`
	Site             string    `json:"site"`
	Received         time.Time `json:"received"`
	Online           bool      `json:"online"`
	AgentVersion     string    `json:"agent_version,omitempty"`
	BootID           string    `json:"boot_id,omitempty"`
	Wall             time.Time `json:"wall"`
	ClockQuality     string    `json:"clock_quality"`
	BufferedReadings uint64    `json:"buffered_readings"`
	DroppedReadings  uint64    `json:"dropped_readings"`
	TimeZone         string    `json:"time_zone,omitempty"`
}

// PutStatus replaces the device's latest status.
func (s *Store) PutStatus(site string, st *wire.Status, received time.Time) error {
	rec := Status{
		Device:           st.DeviceId,
		Site:             site,
		Received:         received.UTC(),
		Online:           st.Online,
		AgentVersion:     st.AgentVersion,
		BootID:           st.BootId,
		Wall:             time.Unix(0, st.WallNs).UTC(),
		ClockQuality:     st.ClockQuality.Name(),
		BufferedReadings: st.BufferedReadings,
		DroppedReadings:  st.DroppedReadings,
		TimeZone:         st.TimeZone,
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		return putJSON(txn, deviceKey(prefixStatus, st.DeviceId), rec)
	})
	if err != nil {
		return fmt.Errorf("store: status of %s: %w", st.DeviceId, err)
	}
	if s.cfg.statusHook != nil {
		s.cfg.statusHook(rec)
	}
	return nil
}

// Statuses returns the latest status of every device that sent one, by device id.
func (s *Store) Statuses() (map[string]Status, error) {
	out := map[string]Status{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixStatus}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var st Status
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &st) }); err != nil {
				return fmt.Errorf("decode %q: %w", it.Item().Key(), err)
			}
			out[st.Device] = st
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: statuses: %w", err)
	}
	return out, nil
}

// WindowQuery selects window results. Device and Size are required; an empty
// Channel or zero Quantity matches all. From/To bound the window start
// (From inclusive, To exclusive); zero means unbounded. Limit 0 means 1000.
type WindowQuery struct {
	Device   string
	Channel  string
	Quantity wire.Quantity
	Size     time.Duration
	From, To time.Time
	Limit    int
}

// Windows returns the matching window results ordered by channel, quantity
// and start.
func (s *Store) Windows(q WindowQuery) ([]Window, error) {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	prefix := append(deviceKey(prefixWindow, q.Device), 0)
	if q.Channel != "" {
		prefix = append(prefix, q.Channel...)
		prefix = append(prefix, 0)
		if q.Quantity != 0 {
			prefix = binary.BigEndian.AppendUint32(prefix, uint32(q.Quantity))
		}
	}
	lo := orderedTime(math.MinInt64)
	if !q.From.IsZero() {
		lo = orderedTime(q.From.UnixNano())
	}
	pastSeries := bytes.Repeat([]byte{0xff}, 8+8+1)
	var out []Window
	// Within a series keys sort by size, then start: seek straight to
	// (size, from) and leave the series at the first key past the range.
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid() && len(out) < q.Limit; {
			key := it.Item().Key()
			id, err := parseWindowKey(key)
			if err != nil {
				return err
			}
			sp := seriesPrefix(prefixWindow, id.Device, id.Channel, id.Quantity)
			target := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(bytes.Clone(sp), uint64(q.Size)), lo)
			if bytes.Compare(key, target) < 0 {
				it.Seek(target)
				continue
			}
			if id.Size != q.Size || q.Quantity != 0 && id.Quantity != q.Quantity || !q.To.IsZero() && id.StartNs >= q.To.UnixNano() {
				it.Seek(append(sp, pastSeries...))
				continue
			}
			var a aggregate
			if err := it.Item().Value(func(b []byte) (err error) { a, err = unmarshalAggregate(b); return err }); err != nil {
				return err
			}
			out = append(out, windowResult(id, a))
			it.Next()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: windows of %s: %w", q.Device, err)
	}
	return out, nil
}

// LatestWindows returns, for every series of the device, its n newest
// windows of the given size, ordered by channel, quantity and start. It
// skips over older windows instead of reading them.
func (s *Store) LatestWindows(device string, size time.Duration, n int) ([]Window, error) {
	prefix := append(deviceKey(prefixWindow, device), 0)
	var out []Window
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true})
		defer it.Close()
		var series []Window // newest first, one series at a time
		flush := func() {
			slices.Reverse(series)
			out = append(series, out...)
			series = nil
		}
		var current []byte
		for it.Seek(append(bytes.Clone(prefix), 0xff)); it.Valid(); {
			id, err := parseWindowKey(it.Item().Key())
			if err != nil {
				return err
			}
			sp := seriesPrefix(prefixWindow, id.Device, id.Channel, id.Quantity)
			if !bytes.Equal(sp, current) {
				flush()
				current = sp
			}
			if id.Size == size && len(series) < n {
				var a aggregate
				if err := it.Item().Value(func(b []byte) (err error) { a, err = unmarshalAggregate(b); return err }); err != nil {
					return err
				}
				series = append(series, windowResult(id, a))
			}
			if len(series) == n {
				it.Seek(sp) // the largest key below this series: the previous series
				continue
			}
			it.Next()
		}
		flush()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: latest windows of %s: %w", device, err)
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

// Readings returns the stored readings of one series with from <= time < to
// (zero bounds are open), in time order. fn is called for each; returning an
// error stops the scan and is returned.
func (s *Store) Readings(device, channel string, q wire.Quantity, from, to time.Time, fn func(Reading) error) error {
	prefix := seriesPrefix(prefixReading, device, channel, q)
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !from.IsZero() {
		lo = from.UnixNano()
	}
	if !to.IsZero() {
		hi = to.UnixNano()
	}
	seek := binary.BigEndian.AppendUint64(bytes.Clone(prefix), orderedTime(lo))
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		for it.Seek(seek); it.Valid(); it.Next() {
			k := it.Item().Key()[len(prefix):]
			if len(k) != 24 {
				return errBadKey
			}
			r := Reading{
				Device: device, Channel: channel, Quantity: q,
				SeqEpoch: binary.BigEndian.Uint64(k[8:]),
				Seq:      binary.BigEndian.Uint64(k[16:]),
			}
			ns := timeFromOrdered(binary.BigEndian.Uint64(k[0:]))
			if ns >= hi {
				return nil
			}
			r.Time = time.Unix(0, ns).UTC()
			err := it.Item().Value(func(v []byte) error {
				if len(v) != 25 {
					return fmt.Errorf("store: reading value has %d bytes", len(v))
				}
				r.Value = math.Float64frombits(binary.BigEndian.Uint64(v[0:]))
				r.TimeErrorNs = int64(binary.BigEndian.Uint64(v[8:]))
				r.Received = time.Unix(0, int64(binary.BigEndian.Uint64(v[16:]))).UTC()
				r.TimeQuality = wire.TimeQuality(v[24])
				return nil
			})
			if err != nil {
				return err
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	})
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

// PutDeadLetter durably records a rejected payload and returns its id.
func (s *Store) PutDeadLetter(dl DeadLetter) (uint64, error) {
	id, err := s.seq.Next()
	if err != nil {
		return 0, fmt.Errorf("store: dead-letter id: %w", err)
	}
	dl.ID = id
	dl.Received = dl.Received.UTC()
	err = s.db.Update(func(txn *badger.Txn) error {
		return putJSON(txn, deadLetterKey(dl.Received, id), dl)
	})
	if err != nil {
		return 0, fmt.Errorf("store: dead letter: %w", err)
	}
	// An agent stuck on a rejected batch resends it forever; keep the area
	// bounded. Trimming every few puts keeps the cost of counting small.
	if s.deadLetterPuts.Add(1)%deadLetterTrimEvery == 1 {
		if err := s.trimDeadLetters(); err != nil {
			s.log.Warn("trim dead letters", "err", err)
		}
	}
	return id, nil
}

const deadLetterTrimEvery = 64

// trimDeadLetters deletes the oldest dead letters beyond the configured limit.
func (s *Store) trimDeadLetters() error {
	var keys [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixDeadLetter}, Reverse: true})
		defer it.Close()
		n := 0
		for it.Seek(append([]byte{prefixDeadLetter}, bytes.Repeat([]byte{0xff}, 17)...)); it.Valid(); it.Next() {
			if n++; n > s.cfg.deadLetterLimit {
				keys = append(keys, it.Item().KeyCopy(nil))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return err
		}
	}
	return wb.Flush()
}

// DeadLetters returns up to limit dead letters, newest first (limit 0 means 100).
func (s *Store) DeadLetters(limit int) ([]DeadLetter, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []DeadLetter
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixDeadLetter}, Reverse: true, PrefetchValues: true})
		defer it.Close()
		for it.Seek(append([]byte{prefixDeadLetter}, bytes.Repeat([]byte{0xff}, 17)...)); it.Valid() && len(out) < limit; it.Next() {
			var dl DeadLetter
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &dl) }); err != nil {
				return fmt.Errorf("decode %q: %w", it.Item().Key(), err)
			}
			out = append(out, dl)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: dead letters: %w", err)
	}
	return out, nil
}

// Ping checks that the database answers reads.
func (s *Store) Ping() error {
	err := s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get([]byte("~ping"))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}
