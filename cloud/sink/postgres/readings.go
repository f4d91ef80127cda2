package postgres

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gridedge/gridedge/cloud/store"
)

// WithReadings writes raw readings to gridedge.readings, in one partition
// per UTC day, and drops the partitions wholly older than retention
// (which must be positive). The collector's store must feed raw readings
// (store.WithFeedReadings).
func WithReadings(retention time.Duration) Option {
	return func(s *Sink) { s.readings, s.readingsRetention = true, retention }
}

// futureDays bounds how far ahead of the clock partitions are created:
// readings dated later (flagged future) are not written (counted).
const futureDays = 2

const insertReadings = `INSERT INTO gridedge.readings (device, channel, quantity, reading_time, seq_epoch, seq, value,
	time_quality, time_error_ns, received, flags)
SELECT d, c, q, t, ep::numeric, sq::numeric, v, tq, te, rc, string_to_array(f, ',')
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::float8[], $8::text[],
	$9::int8[], $10::timestamptz[], $11::text[]) AS u(d, c, q, t, ep, sq, v, tq, te, rc, f)
ON CONFLICT DO NOTHING`

func queueReadings(q *pgx.Batch, rs []*store.RawReading) {
	txt := make([][]string, 7)
	var times, received []time.Time
	var values []float64
	var errs []int64
	for _, r := range rs {
		for i, v := range []string{r.Device, r.Channel, r.Quantity, strconv.FormatUint(r.SeqEpoch, 10),
			strconv.FormatUint(r.Seq, 10), r.TimeQuality, strings.Join(r.Flags, ",")} {
			txt[i] = append(txt[i], v)
		}
		times, received = append(times, r.Time), append(received, r.Received)
		values, errs = append(values, r.Value), append(errs, r.TimeErrorNs)
	}
	q.Queue(insertReadings, txt[0], txt[1], txt[2], times, txt[3], txt[4], values, txt[5], errs, received, txt[6])
}

func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func partitionName(d time.Time) string { return "readings_p" + d.Format("20060102") }

var partitionRe = regexp.MustCompile(`^readings_p(\d{8})$`)

// keepReadings drops the readings a partition cannot take (older than the
// retention, or more than futureDays ahead) and returns the days the rest
// need.
func (s *Sink) keepReadings(rs []*store.RawReading, now time.Time) ([]*store.RawReading, map[time.Time]bool) {
	lo, hi := day(now.Add(-s.readingsRetention)), day(now).AddDate(0, 0, futureDays+1)
	days := map[time.Time]bool{}
	kept := rs[:0]
	for _, r := range rs {
		d := day(r.Time)
		if d.Before(lo) || !d.Before(hi) {
			s.m.skipped.Inc()
			continue
		}
		days[d] = true
		kept = append(kept, r)
	}
	return kept, days
}

// ensurePartitions creates the day partitions not known to exist.
func (s *Sink) ensurePartitions(ctx context.Context, days map[time.Time]bool) error {
	s.partMu.Lock()
	defer s.partMu.Unlock()
	for d := range days {
		if s.partitions[d] {
			continue
		}
		sql := fmt.Sprintf("CREATE TABLE IF NOT EXISTS gridedge.%s PARTITION OF gridedge.readings FOR VALUES FROM ('%s') TO ('%s')",
			partitionName(d), d.Format(time.RFC3339), d.AddDate(0, 0, 1).Format(time.RFC3339))
		if _, err := s.pool.Exec(ctx, sql); err != nil {
			return fmt.Errorf("postgres: create readings partition %s: %w", partitionName(d), err)
		}
		s.partitions[d] = true
	}
	return nil
}

// dropOldPartitions drops the day partitions wholly older than the
// readings retention and returns how many it dropped.
func dropOldPartitions(ctx context.Context, pool *pgxpool.Pool, cut time.Time) (int, error) {
	rows, err := pool.Query(ctx, `SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
		JOIN pg_namespace n ON n.oid = p.relnamespace
		WHERE n.nspname = 'gridedge' AND p.relname = 'readings'`)
	if err != nil {
		return 0, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	dropped := 0
	for _, n := range names {
		m := partitionRe.FindStringSubmatch(n)
		if m == nil {
			continue
		}
		d, err := time.Parse("20060102", m[1])
		if err != nil || d.AddDate(0, 0, 1).After(cut) {
			continue
		}
		if _, err := pool.Exec(ctx, "DROP TABLE IF EXISTS gridedge."+pgx.Identifier{n}.Sanitize()); err != nil {
			return dropped, fmt.Errorf("postgres: drop readings partition %s: %w", n, err)
		}
		dropped++
	}
	return dropped, nil
}

// readingsRetentionEvery is how often old reading partitions are dropped.
const readingsRetentionEvery = time.Hour

// DropOldReadings drops the day partitions of gridedge.readings wholly
// older than the readings retention and returns how many it dropped. Run
// does it at start and every hour.
func (s *Sink) DropOldReadings(ctx context.Context) (int, error) {
	n, err := dropOldPartitions(ctx, s.pool, s.now().Add(-s.readingsRetention))
	if n > 0 {
		s.partMu.Lock()
		clear(s.partitions) // re-created on demand if a reading still needs one
		s.partMu.Unlock()
		s.m.dropped.Add(float64(n))
		s.log.Info("postgres sink: readings partitions dropped by retention", "partitions", n)
	}
	return n, err
}

// dropLoop drops old reading partitions at start and every hour.
func (s *Sink) dropLoop(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-s.ready:
	}
	t := time.NewTicker(readingsRetentionEvery)
	defer t.Stop()
	for {
		if _, err := s.DropOldReadings(ctx); err != nil && ctx.Err() == nil {
			s.fail("readings retention", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
