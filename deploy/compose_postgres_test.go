package deploy_test

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Both Compose files run a pinned PostgreSQL 15 with the init script, a
// named volume, a pg_isready health check and its passwords as secrets;
// every collector that runs the sink reaches it as role gridedge with the
// password file the init script sets that role's password from, without
// waiting for it; Grafana reaches it as role grafana with the other one.
// Every secret file either file needs is listed in docs/deploy.md.
func TestComposeWiresPostgres(t *testing.T) {
	deployDoc, err := os.ReadFile("../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	initScript, err := os.ReadFile(initSQL)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CREATE ROLE gridedge LOGIN", "CREATE ROLE grafana LOGIN", "CREATE DATABASE gridedge OWNER gridedge",
		"/postgres-gridedge-password", "/postgres-grafana-password"} {
		if !strings.Contains(string(initScript), want) {
			t.Fatalf("%s does not contain %q", initSQL, want)
		}
	}
	for file, sinks := range map[string][]string{
		"compose/docker-compose.yml":         {"collector"},
		"compose/docker-compose.cluster.yml": {"worker-1", "worker-2"},
	} {
		doc := documents(t, file)[0]
		svc := func(name string) map[string]any {
			m, _ := get(doc, "services", name).(map[string]any)
			if m == nil {
				t.Fatalf("%s: no service %s", file, name)
			}
			return m
		}
		secrets := func(name string) []string {
			var out []string
			for _, s := range strs(get(svc(name), "secrets")) {
				if f, _ := get(doc, "secrets", s, "file").(string); f == "" {
					t.Errorf("%s: service %s mounts secret %s, which has no file", file, name, s)
				}
				out = append(out, s)
			}
			return out
		}
		pg := svc("postgres")
		if img, _ := pg["image"].(string); !regexp.MustCompile(`^postgres:15\.\d+$`).MatchString(img) {
			t.Errorf("%s: postgres image %q, want postgres:15.<minor>", file, img)
		}
		vols := strs(pg["volumes"])
		if !slices.Contains(vols, "../postgres/init:/docker-entrypoint-initdb.d:ro") {
			t.Errorf("%s: postgres volumes %v, want ../postgres/init on /docker-entrypoint-initdb.d read-only", file, vols)
		}
		dataVol := ""
		for _, v := range vols {
			if src, rest, _ := strings.Cut(v, ":"); rest == "/var/lib/postgresql/data" {
				dataVol = src
			}
		}
		if _, ok := get(doc, "volumes").(map[string]any)[dataVol]; !ok || dataVol == "" {
			t.Errorf("%s: postgres data %q is not a named volume", file, dataVol)
		}
		if hc := strings.Join(strs(get(pg, "healthcheck", "test")), " "); !strings.Contains(hc, "pg_isready") || !strings.Contains(hc, "-d gridedge") {
			t.Errorf("%s: postgres healthcheck %q, want pg_isready on database gridedge", file, hc)
		}
		pgSecrets := secrets("postgres")
		if f := get(pg, "environment", "POSTGRES_PASSWORD_FILE"); f != "/run/secrets/postgres-password" || !slices.Contains(pgSecrets, "postgres-password") {
			t.Errorf("%s: POSTGRES_PASSWORD_FILE %v, want the mounted secret postgres-password", file, f)
		}
		for _, s := range []string{"postgres-gridedge-password", "postgres-grafana-password"} {
			if !slices.Contains(pgSecrets, s) {
				t.Errorf("%s: postgres does not mount %s, which the init script reads", file, s)
			}
		}
		if _, ok := pg["ports"]; ok {
			t.Errorf("%s: postgres publishes ports; it is reached inside the project's network only", file)
		}

		for _, name := range sinks {
			args := strs(get(svc(name), "command"))
			flag := func(f string) string {
				if i := slices.Index(args, f); i >= 0 && i+1 < len(args) {
					return args[i+1]
				}
				return ""
			}
			u, err := url.Parse(flag("-postgres-url"))
			if err != nil || u.Host != "postgres:5432" || u.Path != "/gridedge" || u.User.Username() != "gridedge" {
				t.Errorf("%s: %s -postgres-url %q, want role gridedge at postgres:5432/gridedge (%v)", file, name, flag("-postgres-url"), err)
			} else if _, set := u.User.Password(); set {
				t.Errorf("%s: %s has a password in -postgres-url", file, name)
			}
			if pf := flag("-postgres-password-file"); pf != "/run/secrets/postgres-gridedge-password" || !slices.Contains(secrets(name), "postgres-gridedge-password") {
				t.Errorf("%s: %s -postgres-password-file %q, want the mounted secret postgres-gridedge-password", file, name, pf)
			}
			if dep := get(svc(name), "depends_on", "postgres"); dep != nil || slices.Contains(anyStrs(get(svc(name), "depends_on")), "postgres") {
				t.Errorf("%s: %s depends on postgres; the sink is decoupled and the collector must start without it", file, name)
			}
		}

		graf := svc("grafana")
		for k, v := range map[string]string{
			"GRIDEDGE_GRAFANA_PG_HOST":     "${GRIDEDGE_GRAFANA_PG_HOST:-postgres:5432}",
			"GRIDEDGE_GRAFANA_PG_DATABASE": "${GRIDEDGE_GRAFANA_PG_DATABASE:-gridedge}",
			"GRIDEDGE_GRAFANA_PG_USER":     "${GRIDEDGE_GRAFANA_PG_USER:-grafana}",
		} {
			if got := get(graf, "environment", k); got != v {
				t.Errorf("%s: grafana %s = %v, want %s", file, k, got, v)
			}
		}
		if get(graf, "environment", "GRIDEDGE_GRAFANA_PG_PASSWORD") != nil {
			t.Errorf("%s: grafana has GRIDEDGE_GRAFANA_PG_PASSWORD in its environment; it comes from the secret", file)
		}
		entry := strings.Join(strs(graf["entrypoint"]), " ")
		if !strings.Contains(entry, "GRIDEDGE_GRAFANA_PG_PASSWORD=\"$$(head -n 1 /run/secrets/postgres-grafana-password)\"") ||
			!strings.HasSuffix(entry, "exec /run.sh") || !slices.Contains(secrets("grafana"), "postgres-grafana-password") {
			t.Errorf("%s: grafana entrypoint %q does not hand the mounted secret postgres-grafana-password to Grafana", file, entry)
		}

		for name := range get(doc, "secrets").(map[string]any) {
			f, _ := get(doc, "secrets", name, "file").(string)
			if base := filepath.Base(f); !strings.Contains(string(deployDoc), "deploy/compose/"+base) {
				t.Errorf("%s: secret file %s is not listed in docs/deploy.md", file, f)
			}
		}
	}
}

// anyStrs returns the strings of a list, or nothing for anything else.
func anyStrs(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
