package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// dashboardsDir holds the shipped Grafana dashboards.
const dashboardsDir = "../../deploy/grafana/dashboards"

// postgresUID is the datasource uid the dashboards' SQL panels use.
const postgresUID = "gridedge-postgres"

type dsRef struct {
	UID string `json:"uid"`
}

type dashPanel struct {
	Title      string      `json:"title"`
	Datasource *dsRef      `json:"datasource"`
	Panels     []dashPanel `json:"panels"`
	Targets    []struct {
		RefID      string `json:"refId"`
		Datasource *dsRef `json:"datasource"`
		RawSQL     string `json:"rawSql"`
	} `json:"targets"`
}

type dashboard struct {
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Datasource *dsRef          `json:"datasource"`
			Query      json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []dashPanel `json:"panels"`
}

func pgCount(t testing.TB, url, sql string) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

var (
	timeFilter = regexp.MustCompile(`\$__timeFilter\(([^)]+)\)`)
	timeGroup  = regexp.MustCompile(`\$__timeGroup(Alias)?\(\s*([^,)]+?)\s*,\s*'?([^,)']+?)'?\s*(?:,[^)]*)?\)`)
	variable   = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)
)

// grafanaSQL substitutes Grafana's SQL macros and the template variables
// as Grafana would for the time range [from, to).
func grafanaSQL(sql string, from, to time.Time, vars map[string]string) string {
	ts := func(t time.Time) string { return "'" + t.UTC().Format(time.RFC3339Nano) + "'::timestamptz" }
	sql = timeFilter.ReplaceAllString(sql, "$1 BETWEEN "+ts(from)+" AND "+ts(to))
	// $__timeGroup(col, interval[, fill]) and its Alias form: buckets of
	// the interval ($__interval is 1m here).
	sql = timeGroup.ReplaceAllStringFunc(sql, func(m string) string {
		sub := timeGroup.FindStringSubmatch(m)
		iv := sub[3]
		if iv == "$__interval" {
			iv = "1m"
		}
		d, err := time.ParseDuration(iv)
		if err != nil {
			return m // left for PostgreSQL to refuse, naming it
		}
		secs := fmt.Sprint(int64(d.Seconds()))
		out := "to_timestamp(floor(extract(epoch from " + sub[2] + ")/" + secs + ")*" + secs + ")"
		if sub[1] != "" {
			out += ` AS "time"`
		}
		return out
	})
	sql = strings.NewReplacer("$__timeFrom()", ts(from), "$__timeTo()", ts(to), "$__interval_ms", "60000", "$__interval", "1m").Replace(sql)
	return variable.ReplaceAllStringFunc(sql, func(m string) string {
		sub := variable.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		if v, ok := vars[name]; ok {
			return v
		}
		return m
	})
}

// checkDashboards runs every SQL query (variables first) of every shipped
// dashboard against the database and requires rows from each.
func checkDashboards(t *testing.T, url string, from, to time.Time) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	run := func(what, sql string) [][]any {
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			t.Errorf("%s: %v\n%s", what, err, sql)
			return nil
		}
		out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
		if err != nil {
			t.Errorf("%s: %v\n%s", what, err, sql)
			return nil
		}
		if len(out) == 0 {
			t.Errorf("%s: no rows\n%s", what, sql)
		}
		return out
	}
	queries := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		vars := map[string]string{}
		for _, v := range d.Templating.List {
			if v.Datasource == nil || v.Datasource.UID != postgresUID {
				continue
			}
			var q string
			if err := json.Unmarshal(v.Query, &q); err != nil {
				t.Fatalf("%s: variable %s: query is not SQL text", f, v.Name)
			}
			rows := run(fmt.Sprintf("%s: variable %s", d.Title, v.Name), grafanaSQL(q, from, to, vars))
			queries++
			if len(rows) > 0 {
				vars[v.Name] = fmt.Sprint(rows[0][0])
			}
		}
		var walk func([]dashPanel)
		walk = func(ps []dashPanel) {
			for _, p := range ps {
				walk(p.Panels)
				for _, tg := range p.Targets {
					ds := tg.Datasource
					if ds == nil {
						ds = p.Datasource
					}
					if ds == nil || ds.UID != postgresUID {
						continue
					}
					if strings.TrimSpace(tg.RawSQL) == "" {
						t.Errorf("%s: panel %q target %s: no rawSql", d.Title, p.Title, tg.RefID)
						continue
					}
					run(fmt.Sprintf("%s: panel %q target %s", d.Title, p.Title, tg.RefID), grafanaSQL(tg.RawSQL, from, to, vars))
					queries++
				}
			}
		}
		walk(d.Panels)
	}
	if queries == 0 {
		t.Fatalf("no SQL query found in %s", dashboardsDir)
	}
	t.Logf("%d dashboard queries returned rows", queries)
}

// The macro substitution is Grafana's, for the macros the shipped
// dashboards may use.
func TestGrafanaSQLMacros(t *testing.T) {
	from, to := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	got := grafanaSQL(`SELECT $__timeGroupAlias(window_start, $__interval), $__timeGroup(t, '5m') FROM x WHERE $__timeFilter(window_start) AND device = '$device' AND d IN (${device}) AND s < $__timeTo() AND e > $__timeFrom()`,
		from, to, map[string]string{"device": "m-1"})
	want := `SELECT to_timestamp(floor(extract(epoch from window_start)/60)*60) AS "time", to_timestamp(floor(extract(epoch from t)/300)*300) FROM x WHERE window_start BETWEEN '2026-11-20T00:00:00Z'::timestamptz AND '2026-11-21T00:00:00Z'::timestamptz AND device = 'm-1' AND d IN (m-1) AND s < '2026-11-21T00:00:00Z'::timestamptz AND e > '2026-11-20T00:00:00Z'::timestamptz`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
