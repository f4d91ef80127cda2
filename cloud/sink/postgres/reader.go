package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/shared/wire"
)

// Reader serves results, late readings and devices from the sink's
// database, in the shapes and order of the embedded store (it implements
// cloud/api.Results). Each query is bounded by a timeout.
type Reader struct {
	pool    *pgxpool.Pool
	timeout time.Duration
}

// maxDevices bounds one devices query (the API pages through them).
const maxDevices = 100_000

// NewReader returns a reader of the database at rawURL (password kept out
// of the URL); it connects on first use, with at most maxConns connections.
func NewReader(rawURL, password string, maxConns int32) (*Reader, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: url %s: %w", Redact(rawURL), err)
	}
	if password != "" {
		cfg.ConnConfig.Password = password
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	cfg.MaxConns, cfg.MinConns, cfg.MaxConnIdleTime = max(maxConns, 1), 0, time.Minute
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &Reader{pool: pool, timeout: 30 * time.Second}, nil
}

// Close releases the connections.
func (r *Reader) Close() { r.pool.Close() }

// Ping checks that the database answers.
func (r *Reader) Ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return r.pool.Ping(ctx)
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Results implements cloud/api.Results: the highest revision (or every
// revision, with History, when the sink writes history) of a pipeline's
// windows, ordered by device, channel, quantity, start.
func (r *Reader) Results(q store.ResultQuery, fn func(*store.WindowResult) error) error {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	table, order := "gridedge.results", `device COLLATE "C", channel COLLATE "C", quantity COLLATE "C", window_start`
	if q.History {
		table, order = "gridedge.result_history", order+", revision"
	}
	quantity := ""
	if q.Quantity != wire.Quantity_QUANTITY_UNSPECIFIED {
		quantity = q.Quantity.Name()
	}
	sql := `SELECT pipeline, device, channel, quantity, window_start, window_end, revision, provisional, retracted,
		aggregates, reading_count, coverage, worst_quality, counter_resets, result_rows
		FROM ` + table + `
		WHERE pipeline = $1 AND ($2 = '' OR device = $2) AND ($3 = '' OR channel = $3) AND ($4 = '' OR quantity = $4)
		  AND ($5::timestamptz IS NULL OR window_start >= $5) AND ($6::timestamptz IS NULL OR window_start < $6)
		ORDER BY ` + order + ` LIMIT $7`
	return r.query(sql, []any{q.Pipeline, q.Device, q.Channel, quantity, nullTime(q.From), nullTime(q.To), q.Limit}, func(rows pgx.Rows) error {
		var w store.WindowResult
		var aggregates []byte
		var resultRows []byte
		var rev, resets int32
		if err := rows.Scan(&w.Pipeline, &w.Device, &w.Channel, &w.Quantity, &w.Start, &w.End, &rev, &w.Provisional, &w.Retracted,
			&aggregates, &w.Count, &w.Coverage, &w.WorstQuality, &resets, &resultRows); err != nil {
			return err
		}
		w.Revision, w.CounterResets = uint32(rev), int(resets)
		w.Start, w.End = w.Start.UTC(), w.End.UTC()
		if err := json.Unmarshal(aggregates, &w.Values); err != nil {
			return fmt.Errorf("postgres: aggregates: %w", err)
		}
		if len(resultRows) > 0 {
			if err := json.Unmarshal(resultRows, &w.Rows); err != nil {
				return fmt.Errorf("postgres: result rows: %w", err)
			}
		}
		return fn(&w)
	})
}

// LateReadings implements cloud/api.Results: a device's late readings in
// reading-time order.
func (r *Reader) LateReadings(q store.LateQuery, fn func(*store.LateReading) error) error {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	sql := `SELECT pipeline, device, channel, quantity, reading_time, value, time_quality, seq_epoch::text, seq::text, windows
		FROM gridedge.late_readings
		WHERE device = $1 AND ($2::timestamptz IS NULL OR reading_time >= $2) AND ($3::timestamptz IS NULL OR reading_time < $3)
		ORDER BY reading_time, seq_epoch, seq, pipeline LIMIT $4`
	return r.query(sql, []any{q.Device, nullTime(q.From), nullTime(q.To), q.Limit}, func(rows pgx.Rows) error {
		var l store.LateReading
		var epoch, seq string
		var windows []byte
		if err := rows.Scan(&l.Pipeline, &l.Device, &l.Channel, &l.Quantity, &l.Time, &l.Value, &l.TimeQuality, &epoch, &seq, &windows); err != nil {
			return err
		}
		l.Time = l.Time.UTC()
		var err error
		if l.SeqEpoch, err = strconv.ParseUint(epoch, 10, 64); err != nil {
			return fmt.Errorf("postgres: seq_epoch %q: %w", epoch, err)
		}
		if l.Seq, err = strconv.ParseUint(seq, 10, 64); err != nil {
			return fmt.Errorf("postgres: seq %q: %w", seq, err)
		}
		if err := json.Unmarshal(windows, &l.Windows); err != nil {
			return fmt.Errorf("postgres: windows: %w", err)
		}
		return fn(&l)
	})
}

// Devices implements cloud/api.Results: devices after the given id in id
// (byte) order, with their counters and latest status (either may be missing).
func (r *Reader) Devices(after string, fn func(id string, info *store.DeviceInfo, st *store.Status) error) error {
	sql := `SELECT device, d.device IS NOT NULL, d.site, d.first_seen, d.last_seen, d.readings_stored, d.duplicates, d.conflicts,
		d.flagged, d.max_event, d.series, s.device IS NOT NULL, s.site, s.received, s.online, s.agent_version, s.boot_id, s.wall,
		s.clock_quality, s.buffered_readings, s.dropped_readings, s.time_zone
		FROM gridedge.devices d FULL JOIN gridedge.device_status s USING (device)
		WHERE device COLLATE "C" > $1 ORDER BY device COLLATE "C" LIMIT $2`
	return r.query(sql, []any{after, maxDevices}, func(rows pgx.Rows) error {
		var id string
		var hasInfo, hasStatus bool
		var dSite, sSite, agent, boot, clock, tz *string
		var first, last, maxEv, received, wall *time.Time
		var stored, dups, confl, flagged, buffered, dropped *int64
		var online *bool
		var series []byte
		if err := rows.Scan(&id, &hasInfo, &dSite, &first, &last, &stored, &dups, &confl, &flagged, &maxEv, &series,
			&hasStatus, &sSite, &received, &online, &agent, &boot, &wall, &clock, &buffered, &dropped, &tz); err != nil {
			return err
		}
		var info *store.DeviceInfo
		if hasInfo {
			info = &store.DeviceInfo{ID: id, Site: deref(dSite), FirstSeen: derefTime(first), LastSeen: derefTime(last),
				ReadingsStored: uint64(deref(stored)), Duplicates: uint64(deref(dups)), Conflicts: uint64(deref(confl)),
				Flagged: uint64(deref(flagged))}
			if maxEv != nil {
				info.MaxEventNs = maxEv.UnixNano()
			}
			if len(series) > 0 {
				if err := json.Unmarshal(series, &info.Series); err != nil {
					return fmt.Errorf("postgres: series of %s: %w", id, err)
				}
			}
		}
		var st *store.Status
		if hasStatus {
			st = &store.Status{Device: id, Site: deref(sSite), Received: derefTime(received), Online: deref(online),
				AgentVersion: deref(agent), BootID: deref(boot), Wall: derefTime(wall), ClockQuality: deref(clock),
				BufferedReadings: uint64(deref(buffered)), DroppedReadings: uint64(deref(dropped)), TimeZone: deref(tz)}
		}
		return fn(id, info, st)
	})
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func derefTime(p *time.Time) time.Time {
	if p == nil {
		return time.Time{}
	}
	return p.UTC()
}

// query runs sql and calls each for every row until it returns an error.
func (r *Reader) query(sql string, args []any, each func(pgx.Rows) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	rows, err := r.pool.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}
