package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gridedge/gridedge/cloud/feed"
	"github.com/gridedge/gridedge/cloud/store"
)

// rowsWritten counts the rows one transaction sent, per table.
type rowsWritten struct {
	results, history, late, devices, statuses, readings int
}

type resultKey struct {
	pipeline, device, channel, quantity string
	start                               int64
}

type lateKey struct {
	device     string
	time       int64
	epoch, seq uint64
	pipeline   string
}

// batch is one transaction's rows: records folded so that each key appears
// once (a multi-row upsert may not touch a row twice): the highest revision
// of a window, the latest counters and status of a device.
type batch struct {
	results  map[resultKey]*store.WindowResult
	history  map[resultKey]map[uint32]*store.WindowResult
	late     map[lateKey]*store.LateReading
	devices  map[string]*store.DeviceInfo
	statuses map[string]*store.Status
	readings []*store.RawReading
}

func newBatch() *batch {
	return &batch{results: map[resultKey]*store.WindowResult{}, history: map[resultKey]map[uint32]*store.WindowResult{},
		late: map[lateKey]*store.LateReading{}, devices: map[string]*store.DeviceInfo{}, statuses: map[string]*store.Status{}}
}

func (b *batch) len() int {
	return len(b.results) + len(b.late) + len(b.devices) + len(b.statuses) + len(b.readings)
}

// add folds a record in (records in feed order); raw readings only when
// readings is set.
func (b *batch) add(r *feed.Record, history, readings bool) {
	switch {
	case r.Reading != nil:
		if readings {
			b.readings = append(b.readings, r.Reading)
		}
	case r.Result != nil:
		w := r.Result
		k := resultKey{w.Pipeline, w.Device, w.Channel, w.Quantity, w.Start.UnixNano()}
		if old := b.results[k]; old == nil || old.Revision < w.Revision {
			b.results[k] = w
		}
		if history {
			h := b.history[k]
			if h == nil {
				h = map[uint32]*store.WindowResult{}
				b.history[k] = h
			}
			h[w.Revision] = w
		}
	case r.Late != nil:
		l := r.Late
		b.late[lateKey{l.Device, l.Time.UnixNano(), l.SeqEpoch, l.Seq, l.Pipeline}] = l
	case r.Device != nil:
		b.devices[r.Device.ID] = r.Device
	case r.Status != nil:
		b.statuses[r.Status.Device] = r.Status
	}
}

const upsertResults = `INSERT INTO gridedge.%s AS r (pipeline, device, channel, quantity, window_start, window_end, revision,
	provisional, retracted, aggregates, reading_count, coverage, worst_quality, counter_resets, result_rows)
SELECT p, d, c, q, s, e, rev, prov, retr, ag::jsonb, n, cov, wq, cr, rr::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::int[],
	$8::bool[], $9::bool[], $10::text[], $11::int8[], $12::float8[], $13::text[], $14::int[], $15::text[])
	AS u(p, d, c, q, s, e, rev, prov, retr, ag, n, cov, wq, cr, rr)
%s`

const onResultConflict = `ON CONFLICT (pipeline, device, channel, quantity, window_start) DO UPDATE SET
	window_end = EXCLUDED.window_end, revision = EXCLUDED.revision, provisional = EXCLUDED.provisional,
	retracted = EXCLUDED.retracted, aggregates = EXCLUDED.aggregates, reading_count = EXCLUDED.reading_count,
	coverage = EXCLUDED.coverage, worst_quality = EXCLUDED.worst_quality, counter_resets = EXCLUDED.counter_resets,
	result_rows = EXCLUDED.result_rows, updated_at = now()
	WHERE r.revision < EXCLUDED.revision`

const insertLate = `INSERT INTO gridedge.late_readings (device, reading_time, seq_epoch, seq, pipeline, channel, quantity,
	value, time_quality, windows)
SELECT d, t, ep::numeric, sq::numeric, p, c, q, v, tq, w::jsonb
FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::float8[],
	$9::text[], $10::text[]) AS u(d, t, ep, sq, p, c, q, v, tq, w)
ON CONFLICT DO NOTHING`

const upsertDevices = `INSERT INTO gridedge.devices AS x (device, site, first_seen, last_seen, readings_stored, duplicates,
	conflicts, flagged, max_event, series)
SELECT d, s, fs, ls, rs, du, co, fl, me, se::jsonb
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int8[], $6::int8[], $7::int8[], $8::int8[],
	$9::timestamptz[], $10::text[]) AS u(d, s, fs, ls, rs, du, co, fl, me, se)
ON CONFLICT (device) DO UPDATE SET site = EXCLUDED.site, first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen,
	readings_stored = EXCLUDED.readings_stored, duplicates = EXCLUDED.duplicates, conflicts = EXCLUDED.conflicts,
	flagged = EXCLUDED.flagged, max_event = EXCLUDED.max_event, series = EXCLUDED.series, updated_at = now()
	WHERE x.last_seen IS NULL OR EXCLUDED.last_seen >= x.last_seen`

const upsertStatuses = `INSERT INTO gridedge.device_status AS x (device, site, received, online, agent_version, boot_id, wall,
	clock_quality, buffered_readings, dropped_readings, time_zone)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bool[], $5::text[], $6::text[], $7::timestamptz[],
	$8::text[], $9::int8[], $10::int8[], $11::text[])
ON CONFLICT (device) DO UPDATE SET site = EXCLUDED.site, received = EXCLUDED.received, online = EXCLUDED.online,
	agent_version = EXCLUDED.agent_version, boot_id = EXCLUDED.boot_id, wall = EXCLUDED.wall,
	clock_quality = EXCLUDED.clock_quality, buffered_readings = EXCLUDED.buffered_readings,
	dropped_readings = EXCLUDED.dropped_readings, time_zone = EXCLUDED.time_zone, updated_at = now()
	WHERE x.received <= EXCLUDED.received`

const setPosition = `INSERT INTO gridedge.sink_positions (source, feed_partition, next_seq) VALUES ($1, $2, $3)
ON CONFLICT (source, feed_partition) DO UPDATE SET next_seq = EXCLUDED.next_seq, updated_at = now()`

// position is where the sink is in a partition of a source's feed.
type position struct {
	source    string
	partition int
	next      uint64
}

// queue adds the batch's statements, and the position when set, to q.
func (b *batch) queue(q *pgx.Batch, pos *position) (rowsWritten, error) {
	var n rowsWritten
	if len(b.results) > 0 {
		args, err := resultArgs(b.results)
		if err != nil {
			return n, err
		}
		q.Queue(fmt.Sprintf(upsertResults, "results", onResultConflict), args...)
		n.results = len(b.results)
	}
	if len(b.history) > 0 {
		all := map[resultKey]*store.WindowResult{}
		i := 0
		for _, revs := range b.history {
			for _, w := range revs {
				// Keys only need to be distinct within this statement.
				all[resultKey{pipeline: strconv.Itoa(i)}] = w
				i++
			}
		}
		args, err := resultArgs(all)
		if err != nil {
			return n, err
		}
		q.Queue(fmt.Sprintf(upsertResults, "result_history", "ON CONFLICT DO NOTHING"), args...)
		n.history = len(all)
	}
	if len(b.late) > 0 {
		cols := make([][]string, 8)
		var times []time.Time
		var values []float64
		for _, l := range b.late {
			w, err := json.Marshal(l.Windows)
			if err != nil {
				return n, err
			}
			for i, v := range []string{l.Device, strconv.FormatUint(l.SeqEpoch, 10), strconv.FormatUint(l.Seq, 10), l.Pipeline,
				l.Channel, l.Quantity, l.TimeQuality, string(w)} {
				cols[i] = append(cols[i], v)
			}
			times, values = append(times, l.Time), append(values, l.Value)
		}
		q.Queue(insertLate, cols[0], times, cols[1], cols[2], cols[3], cols[4], cols[5], values, cols[6], cols[7])
		n.late = len(b.late)
	}
	if len(b.devices) > 0 {
		var ids, sites, series []string
		var first, last, maxEv []*time.Time
		var stored, dups, confl, flagged []int64
		for _, d := range b.devices {
			s, err := json.Marshal(d.Series)
			if err != nil {
				return n, err
			}
			if d.Series == nil {
				s = []byte("[]")
			}
			ids, sites, series = append(ids, d.ID), append(sites, d.Site), append(series, string(s))
			first, last = append(first, optTime(d.FirstSeen)), append(last, optTime(d.LastSeen))
			var me *time.Time
			if d.MaxEventNs != 0 {
				t := time.Unix(0, d.MaxEventNs).UTC()
				me = &t
			}
			maxEv = append(maxEv, me)
			stored, dups = append(stored, int64(d.ReadingsStored)), append(dups, int64(d.Duplicates))
			confl, flagged = append(confl, int64(d.Conflicts)), append(flagged, int64(d.Flagged))
		}
		q.Queue(upsertDevices, ids, sites, first, last, stored, dups, confl, flagged, maxEv, series)
		n.devices = len(b.devices)
	}
	if len(b.statuses) > 0 {
		cols := make([][]string, 6)
		var received []time.Time
		var wall []*time.Time
		var online []bool
		var buffered, dropped []int64
		for _, s := range b.statuses {
			for i, v := range []string{s.Device, s.Site, s.AgentVersion, s.BootID, s.ClockQuality, s.TimeZone} {
				cols[i] = append(cols[i], v)
			}
			received, wall, online = append(received, s.Received), append(wall, optTime(s.Wall)), append(online, s.Online)
			buffered, dropped = append(buffered, int64(s.BufferedReadings)), append(dropped, int64(s.DroppedReadings))
		}
		q.Queue(upsertStatuses, cols[0], cols[1], received, online, cols[2], cols[3], wall, cols[4], buffered, dropped, cols[5])
		n.statuses = len(b.statuses)
	}
	if len(b.readings) > 0 {
		queueReadings(q, b.readings)
		n.readings = len(b.readings)
	}
	if pos != nil {
		q.Queue(setPosition, pos.source, pos.partition, int64(pos.next))
	}
	return n, nil
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func resultArgs(rs map[resultKey]*store.WindowResult) ([]any, error) {
	n := len(rs)
	txt := make([][]string, 6)
	for i := range txt {
		txt[i] = make([]string, 0, n)
	}
	starts, ends := make([]time.Time, 0, n), make([]time.Time, 0, n)
	revs, resets := make([]int32, 0, n), make([]int32, 0, n)
	prov, retr := make([]bool, 0, n), make([]bool, 0, n)
	counts, cov := make([]int64, 0, n), make([]float64, 0, n)
	rows := make([]*string, 0, n)
	for _, w := range rs {
		ag, err := json.Marshal(w.Values)
		if err != nil {
			return nil, fmt.Errorf("postgres: encode aggregates: %w", err)
		}
		if w.Values == nil {
			ag = []byte("{}")
		}
		var rr *string
		if len(w.Rows) > 0 {
			b, err := json.Marshal(w.Rows)
			if err != nil {
				return nil, fmt.Errorf("postgres: encode rows: %w", err)
			}
			s := string(b)
			rr = &s
		}
		for i, v := range []string{w.Pipeline, w.Device, w.Channel, w.Quantity, string(ag), w.WorstQuality} {
			txt[i] = append(txt[i], v)
		}
		starts, ends = append(starts, w.Start), append(ends, w.End)
		revs, resets = append(revs, int32(w.Revision)), append(resets, int32(w.CounterResets))
		prov, retr = append(prov, w.Provisional), append(retr, w.Retracted)
		counts, cov, rows = append(counts, w.Count), append(cov, w.Coverage), append(rows, rr)
	}
	return []any{txt[0], txt[1], txt[2], txt[3], starts, ends, revs, prov, retr, txt[4], counts, cov, txt[5], resets, rows}, nil
}

// writeTx writes a batch, and the position when set, in one transaction.
func writeTx(ctx context.Context, conn interface {
	Begin(context.Context) (pgx.Tx, error)
}, b *batch, pos *position) (rowsWritten, error) {
	var q pgx.Batch
	n, err := b.queue(&q, pos)
	if err != nil || q.Len() == 0 {
		return n, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return n, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := tx.SendBatch(ctx, &q).Close(); err != nil {
		return n, err
	}
	return n, tx.Commit(ctx)
}
