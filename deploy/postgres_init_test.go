package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gridedge/gridedge/cloud/feed"
	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/cloud/sink/postgres"
	"github.com/gridedge/gridedge/cloud/sink/postgres/pgtest"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/poll"
	"github.com/gridedge/gridedge/shared/wire"
)

const initSQL = "postgres/init/10-gridedge.sql"

// psqlInit runs the init script as the postgres image does: psql as the
// superuser, stopping at the first error, with the password files in dir.
func psqlInit(t *testing.T, pg *pgtest.Server, dir string) ([]byte, error) {
	t.Helper()
	bin, err := pgtest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(initSQL)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "psql"), "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "--no-password",
		"-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port()), "-U", "postgres", "-d", "postgres", "-f", script)
	cmd.Env = append(os.Environ(), "GRIDEDGE_POSTGRES_SECRETS_DIR="+dir, "PGAPPNAME=gridedge-init-test")
	return cmd.CombinedOutput()
}

func roleURL(pg *pgtest.Server, role string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/gridedge?sslmode=disable", role, pg.Port())
}

// The init script makes a database the collector's sink can migrate and
// write as role gridedge, and role grafana can read every table of (those
// the migrations create, and the day partitions the sink creates later)
// but write none; those include every table the shipped Grafana dashboards
// query. Without its password files it stops before creating
// anything. (pgtest trusts loopback logins: passwords are checked to be
// set, not exercised.)
func TestPostgresInitScript(t *testing.T) {
	pg := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	secrets := t.TempDir()
	if out, err := psqlInit(t, pg, secrets); err == nil {
		t.Fatalf("init without password files succeeded:\n%s", out)
	} else if !regexp.MustCompile(`postgres-gridedge-password is missing or empty`).Match(out) {
		t.Fatalf("init without password files: %v, output does not name the missing file:\n%s", err, out)
	}
	super, err := pgx.Connect(ctx, pg.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer super.Close(ctx)
	var n int
	if err := super.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname IN ('gridedge', 'grafana')").Scan(&n); err != nil || n != 0 {
		t.Fatalf("a failed init left %d roles (%v)", n, err)
	}

	must(t, os.WriteFile(filepath.Join(secrets, "postgres-gridedge-password"), []byte("writer-secret\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(secrets, "postgres-grafana-password"), []byte("reader-secret\n"), 0o600))
	if out, err := psqlInit(t, pg, secrets); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	rows, err := super.Query(ctx, "SELECT rolname FROM pg_authid WHERE rolname IN ('gridedge', 'grafana') AND rolpassword LIKE 'SCRAM-SHA-256$%' AND NOT rolsuper ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	roles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(roles) != 2 {
		t.Fatalf("roles with a password, not superuser: %v (%v), want grafana and gridedge", roles, err)
	}

	// The sink, as role gridedge: migrations, results, late readings,
	// devices, statuses and raw readings in a day partition.
	st, err := store.Open(t.TempDir(), store.WithFeed(store.FeedRetention{}), store.WithFeedReadings(), store.WithSync(false))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const parts = 2
	src := feed.NewLocal(st, parts)
	sink, err := postgres.New(src, roleURL(pg, "gridedge"), postgres.WithPassword("writer-secret"), postgres.WithReadings(24*time.Hour),
		postgres.WithBackoff(20*time.Millisecond, 200*time.Millisecond), postgres.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sink.Run(sctx) }()
	defer func() { stop(); <-done }()
	caughtUp := func() {
		t.Helper()
		poll.Until(t, time.Minute, "the sink wrote the feed as role gridedge", func() bool {
			for p := range src.Partitions() {
				if pos, ok := sink.Position(p); !ok || pos != src.Next(p) {
					return false
				}
			}
			return true
		})
	}
	caughtUp() // migrated, positions on the empty store
	now := time.Now().UTC().Truncate(time.Minute)
	for _, dev := range []string{"gw-1", "gw-2"} {
		b := st.NewBatch(readlog.PartitionFor([]byte(dev), parts))
		key := window.Key{Device: dev, Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER}
		start, end := now.Add(-time.Minute).UnixNano(), now.UnixNano()
		must(t, b.PutOutput(window.Output{
			Results: []window.Result{{Pipeline: "power_1m", Key: key, Start: start, End: end, Revision: 1,
				Names: []string{"mean"}, Values: []float64{230}, Count: 6, Coverage: 1}},
			Late: []window.LateReading{{Pipeline: "power_1m", Reading: window.Reading{Device: dev, Channel: "mains",
				Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, TimeNs: start, Value: 1, SeqEpoch: 1, Seq: 1},
				Windows: []window.Span{{Start: start, End: end}}}},
		}))
		must(t, b.PutDevice(&store.DeviceInfo{ID: dev, Site: "home", LastSeen: now, ReadingsStored: 1}))
		must(t, b.PutStatus(store.Status{Device: dev, Site: "home", Received: now, Online: true, ClockQuality: "synced"}))
		must(t, b.FeedReadings([]store.RawReading{{Device: dev, Channel: "mains", Quantity: "active_power", Time: now.Add(-time.Minute),
			Value: 230, TimeQuality: "synced", SeqEpoch: 1, Seq: 1, Received: now}}))
		must(t, b.Commit())
	}
	caughtUp()

	// Every table and partition in schema gridedge belongs to gridedge.
	superDB, err := pgx.Connect(ctx, pg.URL("gridedge"))
	if err != nil {
		t.Fatal(err)
	}
	defer superDB.Close(ctx)
	rows, err = superDB.Query(ctx, `SELECT n.nspname || '.' || c.relname, pg_get_userbyid(c.relowner) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND (n.nspname = 'gridedge' OR c.relname = 'gridedge_schema_migrations') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	type table struct{ Name, Owner string }
	tables, err := pgx.CollectRows(rows, pgx.RowToStructByPos[table])
	if err != nil {
		t.Fatal(err)
	}
	partitions := 0
	for _, tb := range tables {
		if tb.Owner != "gridedge" {
			t.Errorf("%s is owned by %s, want gridedge", tb.Name, tb.Owner)
		}
		if regexp.MustCompile(`^gridedge\.readings_p\d{8}$`).MatchString(tb.Name) {
			partitions++
		}
	}
	if partitions == 0 {
		t.Fatalf("no day partition of gridedge.readings among %v", tables)
	}

	// grafana reads every one of them, and finds the rows the sink wrote.
	reader, err := pgx.Connect(ctx, roleURL(pg, "grafana"))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close(ctx)
	for _, tb := range tables {
		var n int64
		if err := reader.QueryRow(ctx, "SELECT count(*) FROM "+tb.Name).Scan(&n); err != nil {
			t.Errorf("grafana cannot read %s: %v", tb.Name, err)
		}
	}
	for _, tb := range []string{"gridedge.results", "gridedge.late_readings", "gridedge.devices", "gridedge.device_status",
		"gridedge.readings", "gridedge.sink_positions", "public.gridedge_schema_migrations"} {
		var n int64
		if err := reader.QueryRow(ctx, "SELECT count(*) FROM "+tb).Scan(&n); err != nil || n == 0 {
			t.Errorf("grafana: SELECT count(*) FROM %s = %d, %v; want rows", tb, n, err)
		}
	}

	// Every table the shipped Grafana dashboards query is among them.
	dashboards, err := filepath.Glob("grafana/dashboards/*.json")
	if err != nil || len(dashboards) == 0 {
		t.Fatalf("dashboards: %v %v", dashboards, err)
	}
	readable := map[string]bool{}
	for _, tb := range tables {
		readable[tb.Name] = true
	}
	for _, p := range dashboards {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range regexp.MustCompile(`gridedge\.[a-z_0-9]+`).FindAllString(string(raw), -1) {
			if !readable[name] {
				t.Errorf("%s queries %s, which is not a table grafana was shown to read", filepath.Base(p), name)
			}
		}
	}

	// ... and writes nothing, even in a transaction it declares read-write.
	for _, sql := range []string{
		"INSERT INTO gridedge.devices (device, site, readings_stored, duplicates, conflicts, flagged, series) VALUES ('x', 's', 0, 0, 0, 0, '[]')",
		"UPDATE gridedge.results SET revision = revision + 1",
		"DELETE FROM gridedge.late_readings",
		"TRUNCATE gridedge.device_status",
		"DELETE FROM public.gridedge_schema_migrations",
		"CREATE TABLE gridedge.grafana_was_here (x int)",
		"CREATE TABLE public.grafana_was_here (x int)",
		"DROP TABLE gridedge.sink_positions",
	} {
		if _, err := reader.Exec(ctx, sql); err == nil {
			t.Errorf("grafana: %s succeeded in a default (read-only) transaction", sql)
		}
		tx, err := reader.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadWrite})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, sql)
		_ = tx.Rollback(ctx)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("grafana: %s in a read-write transaction: %v, want permission denied", sql, err)
		}
	}
}
