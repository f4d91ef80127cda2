package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/dgraph-io/badger/v4"

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

// EngineSink stores a window engine's output and checkpoint in the store: it
// implements the window pipeline's Sink. Results are upserts on (pipeline,
// key, window start) keeping the highest revision, every revision is kept as
// history, late readings are keyed by their identity (a replay rewrites the
// same entries), and all of a Commit is one transaction.
type EngineSink struct {
	s        *Store
	configID string
}

// EngineSink returns the sink for an engine whose pipeline configuration is
// identified by configID (e.g. a hash of the configuration). A checkpoint
// stored under another id is not loaded: LoadState then drops every stored
// result and late reading, so the new configuration recomputes them from the
// whole ingest log.
func (s *Store) EngineSink(configID string) *EngineSink {
	return &EngineSink{s: s, configID: configID}
}

// LoadState returns the last committed checkpoint of this configuration, or
// nil (after clearing the results of another configuration).
func (k *EngineSink) LoadState(ctx context.Context) ([]byte, error) {
	var id string
	var state []byte
	err := k.s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte{prefixEngineState})
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) < 2 || len(v) < 2+int(binary.BigEndian.Uint16(v)) {
				return errors.New("engine state truncated")
			}
			n := int(binary.BigEndian.Uint16(v))
			id = string(v[2 : 2+n])
			state = bytes.Clone(v[2+n:])
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: load engine state: %w", err)
	}
	if id == k.configID {
		return state, nil
	}
	// No state, or another configuration's: results must be recomputed from
	// offset 1. Dropping is idempotent, so a crash before the first commit
	// just drops again on the next start.
	for _, p := range []byte{prefixResult, prefixHistory, prefixLate, prefixEngineState} {
		if err := k.s.db.DropPrefix([]byte{p}); err != nil {
			return nil, fmt.Errorf("store: drop results of another pipeline configuration: %w", err)
		}
	}
	if id != "" {
		k.s.log.Warn("window pipelines changed: recomputing every result from the ingest log", "old_config", id, "new_config", k.configID)
	}
	return nil, nil
}

// Commit writes out and state in one synced transaction.
func (k *EngineSink) Commit(ctx context.Context, out window.Output, state []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := k.s.db.Update(func(txn *badger.Txn) error {
		for i := range out.Results {
			r := &out.Results[i]
			v, err := json.Marshal(toWindowResult(r))
			if err != nil {
				return fmt.Errorf("encode result: %w", err)
			}
			if err := txn.Set(historyKey(r), v); err != nil {
				return err
			}
			key := resultKey(r)
			prev, err := storedRevision(txn, key)
			if err != nil {
				return err
			}
			if prev > r.Revision {
				continue // a replay re-emitting an older revision
			}
			if err := txn.Set(key, v); err != nil {
				return err
			}
		}
		for i := range out.Late {
			l := &out.Late[i]
			rec := LateReading{
				Pipeline: l.Pipeline, Device: l.Reading.Device, Channel: l.Reading.Channel,
				Quantity: l.Reading.Quantity.Name(), Time: time.Unix(0, l.Reading.TimeNs).UTC(),
				Value: l.Reading.Value, TimeQuality: l.Reading.Quality.Name(),
				SeqEpoch: l.Reading.SeqEpoch, Seq: l.Reading.Seq,
			}
			for _, w := range l.Windows {
				rec.Windows = append(rec.Windows, WindowSpan{Start: time.Unix(0, w.Start).UTC(), End: time.Unix(0, w.End).UTC()})
			}
			if err := putJSON(txn, lateKey(l), rec); err != nil {
				return err
			}
		}
		v := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(k.configID)+len(state)), uint16(len(k.configID)))
		v = append(v, k.configID...)
		return txn.Set([]byte{prefixEngineState}, append(v, state...))
	})
	if errors.Is(err, badger.ErrTxnTooBig) {
		return fmt.Errorf("store: engine commit of %d results and %d late readings is too large for one transaction (commit more often): %w", len(out.Results), len(out.Late), err)
	}
	if err != nil {
		return fmt.Errorf("store: engine commit: %w", err)
	}
	return nil
}

func storedRevision(txn *badger.Txn, key []byte) (uint32, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var rev struct {
		Revision uint32 `json:"revision"`
	}
	err = item.Value(func(v []byte) error { return json.Unmarshal(v, &rev) })
	return rev.Revision, err
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

// Results returns the matching results ordered by device, channel,
// quantity, window start (and revision, with History).
func (s *Store) Results(q ResultQuery) ([]WindowResult, error) {
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
	var out []WindowResult
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		// Within a series keys sort by start: seek to from, and leave the
		// series at the first start past to.
		for it.Rewind(); it.Valid() && len(out) < q.Limit; {
			key := it.Item().Key()
			series, start, err := splitResultKey(key, q.History)
			if err != nil {
				return err
			}
			if start >= hi {
				it.Seek(append(bytes.Clone(series), bytes.Repeat([]byte{0xff}, 13)...))
				continue
			}
			if start < lo {
				it.Seek(binary.BigEndian.AppendUint64(bytes.Clone(series), orderedTime(lo)))
				continue
			}
			var r WindowResult
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
				return fmt.Errorf("decode result %q: %w", key, err)
			}
			out = append(out, r)
			it.Next()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: results of %s: %w", q.Pipeline, err)
	}
	return out, nil
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

// LateReadings returns a device's late readings in reading-time order.
func (s *Store) LateReadings(q LateQuery) ([]LateReading, error) {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	prefix := append(deviceKey(prefixLate, q.Device), 0)
	seek := bytes.Clone(prefix)
	if !q.From.IsZero() {
		seek = binary.BigEndian.AppendUint64(seek, orderedTime(q.From.UnixNano()))
	}
	var out []LateReading
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		for it.Seek(seek); it.Valid() && len(out) < q.Limit; it.Next() {
			k := it.Item().Key()[len(prefix):]
			if len(k) < 24 {
				return errBadKey
			}
			if !q.To.IsZero() && timeFromOrdered(binary.BigEndian.Uint64(k)) >= q.To.UnixNano() {
				return nil
			}
			var l LateReading
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &l) }); err != nil {
				return fmt.Errorf("decode late reading: %w", err)
			}
			out = append(out, l)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: late readings of %s: %w", q.Device, err)
	}
	return out, nil
}
