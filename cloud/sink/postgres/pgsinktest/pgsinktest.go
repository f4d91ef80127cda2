// Package pgsinktest holds test helpers for the PostgreSQL sink: comparing
// what a database holds with a collector store.
package pgsinktest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gridedge/gridedge/cloud/store"
)

// row is a result as compared: key, revision and aggregates.
type row struct {
	key      string
	revision uint32
	values   string
}

func key(pipeline, device, channel, quantity string, start time.Time) string {
	return fmt.Sprintf("%s|%s|%s|%s|%s", pipeline, device, channel, quantity, start.UTC().Format(time.RFC3339Nano))
}

// ResultsDiff returns the differences between the results of the given
// pipelines in the database at url and in st (nil when equal), and how many
// results were compared.
func ResultsDiff(ctx context.Context, url string, st *store.Store, pipelines []string) ([]string, int, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close(ctx)
	db := map[string]row{}
	rows, err := conn.Query(ctx, `SELECT pipeline, device, channel, quantity, window_start, revision, aggregates::text
		FROM gridedge.results WHERE pipeline = ANY($1)`, pipelines)
	if err != nil {
		return nil, 0, err
	}
	for rows.Next() {
		var p, d, c, q, ag string
		var start time.Time
		var rev int32
		if err := rows.Scan(&p, &d, &c, &q, &start, &rev, &ag); err != nil {
			return nil, 0, err
		}
		db[key(p, d, c, q, start)] = row{revision: uint32(rev), values: canonical(ag)}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	var diffs []string
	n := 0
	for _, p := range pipelines {
		err := st.Results(store.ResultQuery{Pipeline: p, Limit: 1 << 30}, func(w *store.WindowResult) error {
			n++
			k := key(w.Pipeline, w.Device, w.Channel, w.Quantity, w.Start)
			b, _ := json.Marshal(w.Values)
			got, ok := db[k]
			switch {
			case !ok:
				diffs = append(diffs, "missing in PostgreSQL: "+k)
			case got.revision != w.Revision || got.values != canonical(string(b)):
				diffs = append(diffs, fmt.Sprintf("%s: PostgreSQL rev %d %s, store rev %d %s", k, got.revision, got.values, w.Revision, b))
			}
			delete(db, k)
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
	}
	for k := range db {
		diffs = append(diffs, "only in PostgreSQL: "+k)
	}
	sort.Strings(diffs)
	return diffs, n, nil
}

func canonical(js string) string {
	var m map[string]float64
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		return js
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// RequireEqual fails t unless the database holds exactly the store's
// results of pipelines, and at least one.
func RequireEqual(t testing.TB, url string, st *store.Store, pipelines ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	diffs, n, err := ResultsDiff(ctx, url, st, pipelines)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		if len(diffs) > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("… %d more", len(diffs)-20))
		}
		t.Fatalf("PostgreSQL differs from the store (%d results):\n%s", n, fmt.Sprint(diffs))
	}
	if n == 0 {
		t.Fatal("no results to compare")
	}
	return n
}
