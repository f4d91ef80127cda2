package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

// WindowResult is one emission of an engine window as stored and served.
type WindowResult struct {
	Pipeline string `json:"pipeline"`
	Device   string `json:"device"`
	Channel  string `json:"channel"`
	// Quantity is empty for derived series.
	Quantity      string             `json:"quantity,omitempty"`
	Start         time.Time          `json:"start"`
	End           time.Time          `json:"end"`
	Revision      uint32             `json:"revision"`
	Provisional   bool               `json:"provisional,omitempty"`
	Retracted     bool               `json:"retracted,omitempty"`
	Values        map[string]float64 `json:"values"`
	Count         int64              `json:"count"`
	Coverage      float64            `json:"coverage"`
	WorstQuality  string             `json:"worst_quality"`
	CounterResets int                `json:"counter_resets,omitempty"`
	Rows          []ResultRow        `json:"rows,omitempty"`
}

// ResultRow is one reading or joined row of a snapshot or session result.
type ResultRow struct {
	Time   time.Time `json:"time"`
	Values []float64 `json:"values"`
}

// LateReading is a reading that arrived after the allowed lateness of the
// windows listed with it.
type LateReading struct {
	Pipeline    string       `json:"pipeline"`
	Device      string       `json:"device"`
	Channel     string       `json:"channel"`
	Quantity    string       `json:"quantity"`
	Time        time.Time    `json:"time"`
	Value       float64      `json:"value"`
	TimeQuality string       `json:"time_quality"`
	SeqEpoch    uint64       `json:"seq_epoch,string"`
	Seq         uint64       `json:"seq"`
	Windows     []WindowSpan `json:"windows"`
}

// WindowSpan is a half-open window [Start, End).
type WindowSpan struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

func toWindowResult(r *window.Result) WindowResult {
	out := WindowResult{
		Pipeline: r.Pipeline, Device: r.Key.Device, Channel: r.Key.Channel,
		Start: time.Unix(0, r.Start).UTC(), End: time.Unix(0, r.End).UTC(),
		Revision: r.Revision, Provisional: r.Provisional, Retracted: r.Retracted,
		Values: make(map[string]float64, len(r.Names)), Count: r.Count, Coverage: r.Coverage,
		WorstQuality: r.WorstQuality.Name(), CounterResets: r.CounterResets,
	}
	if r.Key.Quantity != wire.Quantity_QUANTITY_UNSPECIFIED {
		out.Quantity = r.Key.Quantity.Name()
	}
	for i, name := range r.Names {
		// JSON has no NaN or infinity; an undefined aggregate is left out.
		if v := r.Values[i]; !math.IsNaN(v) && !math.IsInf(v, 0) {
			out.Values[name] = v
		}
	}
	for _, row := range r.Rows {
		out.Rows = append(out.Rows, ResultRow{Time: time.Unix(0, row.TimeNs).UTC(), Values: row.Values})
	}
	return out
}

func resultSeriesPrefix(prefix byte, pipeline, device, channel string, q wire.Quantity) []byte {
	k := make([]byte, 0, 1+len(pipeline)+1+len(device)+1+len(channel)+1+4+12)
	k = append(k, prefix)
	k = append(k, pipeline...)
	k = append(k, 0)
	k = append(k, device...)
	k = append(k, 0)
	k = append(k, channel...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uint32(q))
}

func resultKey(r *window.Result) []byte {
	k := resultSeriesPrefix(prefixResult, r.Pipeline, r.Key.Device, r.Key.Channel, r.Key.Quantity)
	return binary.BigEndian.AppendUint64(k, orderedTime(r.Start))
}

func historyKey(r *window.Result) []byte {
	k := resultSeriesPrefix(prefixHistory, r.Pipeline, r.Key.Device, r.Key.Channel, r.Key.Quantity)
	k = binary.BigEndian.AppendUint64(k, orderedTime(r.Start))
	return binary.BigEndian.AppendUint32(k, r.Revision)
}

func lateKey(l *window.LateReading) []byte {
	r := &l.Reading
	k := make([]byte, 0, 1+len(r.Device)+1+24+len(l.Pipeline))
	k = append(k, prefixLate)
	k = append(k, r.Device...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, orderedTime(r.TimeNs))
	k = binary.BigEndian.AppendUint64(k, r.SeqEpoch)
	k = binary.BigEndian.AppendUint64(k, r.Seq)
	return append(k, l.Pipeline...)
}

func toLateReading(l *window.LateReading) LateReading {
	rec := LateReading{
		Pipeline: l.Pipeline, Device: l.Reading.Device, Channel: l.Reading.Channel,
		Quantity: l.Reading.Quantity.Name(), Time: time.Unix(0, l.Reading.TimeNs).UTC(),
		Value: l.Reading.Value, TimeQuality: l.Reading.Quality.Name(),
		SeqEpoch: l.Reading.SeqEpoch, Seq: l.Reading.Seq,
	}
	for _, w := range l.Windows {
		rec.Windows = append(rec.Windows, WindowSpan{Start: time.Unix(0, w.Start).UTC(), End: time.Unix(0, w.End).UTC()})
	}
	return rec
}

// ResultQuery selects engine results. Pipeline is required; Device, Channel
// and Quantity narrow it (Channel needs Device; Quantity needs Channel, and
// derived series have no quantity). From/To bound the window start (From
// inclusive, To exclusive; zero is open). History returns every revision
// instead of the highest. Limit 0 means 1000.
type ResultQuery struct {
	Pipeline string
	Device   string
	Channel  string
	Quantity wire.Quantity
	From, To time.Time
	History  bool
	Limit    int
}

// Results calls fn for the matching results (at most Limit, 0 meaning
// 1000) ordered by device, channel, quantity, window start (and revision,
// with History), one at a time. fn's error stops the scan and is returned.
func (s *Store) Results(q ResultQuery, fn func(*WindowResult) error) error {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	pfx := byte(prefixResult)
	if q.History {
		pfx = prefixHistory
	}
	prefix := append([]byte{pfx}, q.Pipeline...)
	prefix = append(prefix, 0)
	if q.Device != "" {
		prefix = append(prefix, q.Device...)
		prefix = append(prefix, 0)
		if q.Channel != "" {
			prefix = append(prefix, q.Channel...)
			prefix = append(prefix, 0)
			if q.Quantity != 0 {
				prefix = binary.BigEndian.AppendUint32(prefix, uint32(q.Quantity))
			}
		}
	}
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !q.From.IsZero() {
		lo = q.From.UnixNano()
	}
	if !q.To.IsZero() {
		hi = q.To.UnixNano()
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("store: results of %s: %w", q.Pipeline, err)
	}
	defer it.Close()
	n := 0
	// Within a series keys sort by start: seek to from, and leave the
	// series at the first start past to.
	for it.First(); it.Valid() && n < q.Limit; {
		key := it.Key()
		series, start, err := splitResultKey(key, q.History)
		if err != nil {
			return err
		}
		if start >= hi {
			it.SeekGE(append(bytes.Clone(series), bytes.Repeat([]byte{0xff}, 13)...))
			continue
		}
		if start < lo {
			it.SeekGE(binary.BigEndian.AppendUint64(bytes.Clone(series), orderedTime(lo)))
			continue
		}
		var r WindowResult
		if err := json.Unmarshal(it.Value(), &r); err != nil {
			return fmt.Errorf("store: decode result %q: %w", key, err)
		}
		n++
		if err := fn(&r); err != nil {
			return err
		}
		it.Next()
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: results of %s: %w", q.Pipeline, err)
	}
	return nil
}

// splitResultKey returns the series part of a result or history key and
// the window start.
func splitResultKey(k []byte, history bool) (series []byte, start int64, err error) {
	tail := 8
	if history {
		tail = 12
	}
	if len(k) < 1+3+4+tail {
		return nil, 0, errBadKey
	}
	series = k[:len(k)-tail]
	return series, timeFromOrdered(binary.BigEndian.Uint64(k[len(k)-tail:])), nil
}

// LateQuery selects late readings of one device by reading time (From
// inclusive, To exclusive; zero is open). Limit 0 means 1000.
type LateQuery struct {
	Device   string
	From, To time.Time
	Limit    int
}

// LateReadings calls fn for a device's late readings in reading-time order,
// one at a time. fn's error stops the scan and is returned.
func (s *Store) LateReadings(q LateQuery, fn func(*LateReading) error) error {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	prefix := append(deviceKey(prefixLate, q.Device), 0)
	lower := bytes.Clone(prefix)
	if !q.From.IsZero() {
		lower = binary.BigEndian.AppendUint64(lower, orderedTime(q.From.UnixNano()))
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("store: late readings of %s: %w", q.Device, err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid() && n < q.Limit; it.Next() {
		k := it.Key()[len(prefix):]
		if len(k) < 24 {
			return errBadKey
		}
		if !q.To.IsZero() && timeFromOrdered(binary.BigEndian.Uint64(k)) >= q.To.UnixNano() {
			break
		}
		var l LateReading
		if err := json.Unmarshal(it.Value(), &l); err != nil {
			return fmt.Errorf("store: decode late reading: %w", err)
		}
		n++
		if err := fn(&l); err != nil {
			return err
		}
	}
	return it.Error()
}
