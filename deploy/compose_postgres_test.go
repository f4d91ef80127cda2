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

// The Kubernetes manifests wire PostgreSQL the same way: the postgres
// StatefulSet runs the Compose file's image with the init ConfigMap and the
// Secret gridedge-postgres where the init script and the image read them;
// the collector and every worker read the writer's password from that
// Secret's key postgres-gridedge-password, Grafana the reader's.
func TestKubernetesWiresPostgres(t *testing.T) {
	objs := map[string]map[string]any{}
	for _, o := range k8sObjects(t) {
		objs[o.kind()+"/"+o.name()] = o.doc
	}
	for k, v := range clusterDocs(t) {
		objs[k] = v
	}
	container := func(key string) map[string]any {
		c, _ := get(objs[key], "spec", "template", "spec", "containers", 0).(map[string]any)
		if c == nil {
			t.Fatalf("no %s with a container", key)
		}
		return c
	}
	env := func(c map[string]any, name string) any {
		for _, e := range get(c, "env").([]any) {
			if get(e, "name") == name {
				if v := get(e, "value"); v != nil {
					return v
				}
				return get(e, "valueFrom")
			}
		}
		return nil
	}
	// mountOf returns the volume mounted at the directory holding path.
	mountOf := func(key string, c map[string]any, dir string) map[string]any {
		for _, m := range get(c, "volumeMounts").([]any) {
			if get(m, "mountPath") == dir {
				for _, v := range get(objs[key], "spec", "template", "spec", "volumes").([]any) {
					if get(v, "name") == get(m, "name") {
						return v.(map[string]any)
					}
				}
			}
		}
		t.Fatalf("%s: nothing mounted at %s", key, dir)
		return nil
	}

	pg := container("StatefulSet/postgres")
	compose := documents(t, "compose/docker-compose.yml")[0]
	if img := get(compose, "services", "postgres", "image"); get(pg, "image") != img {
		t.Errorf("postgres image %v, want the Compose file's %v", get(pg, "image"), img)
	}
	if cm := get(mountOf("StatefulSet/postgres", pg, "/docker-entrypoint-initdb.d"), "configMap", "name"); cm != "postgres-init" {
		t.Errorf("postgres /docker-entrypoint-initdb.d holds %v, want ConfigMap postgres-init", cm)
	}
	dir, _ := env(pg, "GRIDEDGE_POSTGRES_SECRETS_DIR").(string)
	if s := get(mountOf("StatefulSet/postgres", pg, dir), "secret", "secretName"); s != "gridedge-postgres" {
		t.Errorf("postgres: GRIDEDGE_POSTGRES_SECRETS_DIR %q holds %v, want Secret gridedge-postgres", dir, s)
	}
	if f := env(pg, "POSTGRES_PASSWORD_FILE"); f != dir+"/postgres-password" {
		t.Errorf("postgres: POSTGRES_PASSWORD_FILE %v, want %s/postgres-password", f, dir)
	}
	if get(objs["Service/postgres"], "spec", "selector", "app") != "postgres" {
		t.Error("no Service postgres selecting the postgres pods")
	}

	for _, key := range []string{"StatefulSet/gridedge-collector", "StatefulSet/gridedge-worker"} {
		c := container(key)
		args := strs(get(c, "args"))
		flag := func(f string) string {
			if i := slices.Index(args, f); i >= 0 && i+1 < len(args) {
				return args[i+1]
			}
			return ""
		}
		if u := flag("-postgres-url"); u != "postgres://gridedge@postgres:5432/gridedge?sslmode=disable" {
			t.Errorf("%s: -postgres-url %q, want role gridedge at the postgres Service", key, u)
		}
		pf := flag("-postgres-password-file")
		vol := mountOf(key, c, filepath.Dir(pf))
		if get(vol, "secret", "secretName") != "gridedge-postgres" || get(vol, "secret", "items", 0, "key") != "postgres-gridedge-password" ||
			get(vol, "secret", "items", 0, "path") != filepath.Base(pf) {
			t.Errorf("%s: -postgres-password-file %q is not key postgres-gridedge-password of Secret gridedge-postgres: %v", key, pf, vol)
		}
	}
	graf := container("StatefulSet/grafana")
	for k, v := range map[string]string{"GRIDEDGE_GRAFANA_PG_HOST": "postgres:5432", "GRIDEDGE_GRAFANA_PG_DATABASE": "gridedge", "GRIDEDGE_GRAFANA_PG_USER": "grafana"} {
		if got := env(graf, k); got != v {
			t.Errorf("grafana %s = %v, want %s", k, got, v)
		}
	}
	if ref := env(graf, "GRIDEDGE_GRAFANA_PG_PASSWORD"); get(ref, "secretKeyRef", "name") != "gridedge-postgres" || get(ref, "secretKeyRef", "key") != "postgres-grafana-password" {
		t.Errorf("grafana GRIDEDGE_GRAFANA_PG_PASSWORD from %v, want key postgres-grafana-password of Secret gridedge-postgres", ref)
	}
}
