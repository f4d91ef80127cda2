package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one schema step: the file NNNN_name.sql applied in one
// transaction.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, n := range names {
		base := strings.TrimSuffix(n[len("migrations/"):], ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("postgres: migration file %s: want NNNN_name.sql", n)
		}
		b, err := migrationFiles.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := range out {
		if out[i].Version != i+1 {
			return nil, fmt.Errorf("postgres: migrations must be numbered 1, 2, …: %d is %d", i+1, out[i].Version)
		}
	}
	return out, nil
}

// migrationLock is the advisory lock key held while migrating, so two
// collectors starting at once apply each step once.
const migrationLock = 0x67726964 // "grid"

// Migrate brings the database's gridedge schema to the newest version,
// applying each missing migration in its own transaction with its row in
// gridedge_schema_migrations. It returns the version reached. A database
// at a newer version than this release knows is refused.
func Migrate(ctx context.Context, conn *pgx.Conn) (int, error) {
	ms, err := Migrations()
	if err != nil {
		return 0, err
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return 0, fmt.Errorf("postgres: migration lock: %w", err)
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock) }()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS public.gridedge_schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, fmt.Errorf("postgres: migrations table: %w", err)
	}
	var cur int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM public.gridedge_schema_migrations").Scan(&cur); err != nil {
		return 0, fmt.Errorf("postgres: schema version: %w", err)
	}
	if cur > len(ms) {
		return cur, fmt.Errorf("postgres: the database has gridedge schema version %d, this release knows up to %d: upgrade the collector", cur, len(ms))
	}
	for _, m := range ms[cur:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO public.gridedge_schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name)
			return err
		})
		if err != nil {
			return cur, fmt.Errorf("postgres: migration %04d_%s: %w", m.Version, m.Name, err)
		}
		cur = m.Version
	}
	return cur, nil
}
