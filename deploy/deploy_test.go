package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/gridedge/gridedge/edge/config"
)

// yamlFiles lists every YAML file under deploy/.
func yamlFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(p); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 5 {
		t.Fatalf("found only %d YAML files: %v", len(out), out)
	}
	return out
}

// documents decodes every YAML document in a file.
func documents(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", path, len(docs)+1, err)
		}
		if doc == nil {
			t.Errorf("%s: document %d is empty", path, len(docs)+1)
		}
		docs = append(docs, doc)
	}
	if len(docs) == 0 {
		t.Fatalf("%s: no YAML documents", path)
	}
	return docs
}

func TestEveryYAMLFileParses(t *testing.T) {
	for _, p := range yamlFiles(t) {
		documents(t, p)
	}
}

// k8sManifests are the Kubernetes manifests (kustomization.yaml aside).
func k8sManifests(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	return slices.DeleteFunc(paths, func(p string) bool { return filepath.Base(p) == "kustomization.yaml" })
}

func TestKubernetesManifests(t *testing.T) {
	paths := k8sManifests(t)
	kinds := map[string]bool{}
	for _, p := range paths {
		for i, doc := range documents(t, p) {
			kind, _ := doc["kind"].(string)
			meta, _ := doc["metadata"].(map[string]any)
			if doc["apiVersion"] == nil || kind == "" || meta == nil || meta["name"] == nil {
				t.Errorf("%s doc %d: needs apiVersion, kind and metadata.name", p, i+1)
				continue
			}
			kinds[kind] = true
			if kind != "Namespace" && meta["namespace"] != "gridedge" {
				t.Errorf("%s %s/%v: namespace %v, want gridedge", p, kind, meta["name"], meta["namespace"])
			}
		}
	}
	for _, k := range []string{"Namespace", "ConfigMap", "StatefulSet", "Service", "NetworkPolicy"} {
		if !kinds[k] {
			t.Errorf("no %s in deploy/k8s", k)
		}
	}
}

func TestComposeFile(t *testing.T) {
	doc := documents(t, "compose/docker-compose.yml")[0]
	services, _ := doc["services"].(map[string]any)
	for _, name := range []string{"mosquitto", "collector"} {
		svc, _ := services[name].(map[string]any)
		if svc == nil || svc["image"] == nil {
			t.Errorf("service %s missing or without image", name)
		}
	}
	// Bind mounts of files shipped in the repository must exist; passwd and
	// certs are the operator's.
	for _, f := range []string{"compose/mosquitto.conf", "mosquitto/acl", "Dockerfile"} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
}

// TestDockerfile checks the properties the manifests rely on: a static
// binary, a non-root user owning /data, and the collector as entrypoint.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	for _, want := range []string{
		"CGO_ENABLED=0",
		"./cmd/gridedge-collector",
		"FROM gcr.io/distroless/static",
		"USER nonroot",
		"--chown=65532:65532 /out/data /data",
		`ENTRYPOINT ["/usr/local/bin/gridedge-collector"]`,
		`"-data-dir", "/data"`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if _, err := os.Stat("../cmd/gridedge-collector"); err != nil {
		t.Errorf("the image builds ./cmd/gridedge-collector: %v", err)
	}
}

// TestAgentConfigIsValid parses the shipped /etc/gridedge/agent.yaml with the
// agent's own configuration loader: as shipped it is refused for exactly its
// CHANGE-ME placeholders (so an agent never starts as device "CHANGE-ME"),
// and once they are filled in it is valid.
func TestAgentConfigIsValid(t *testing.T) {
	data, err := os.ReadFile("agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = config.Parse(data)
	if err == nil {
		t.Fatal("shipped agent.yaml with its placeholders accepted")
	}
	var fields []string
	for _, l := range strings.Split(err.Error(), "\n") {
		field, rest, _ := strings.Cut(l, " (line ")
		if !strings.Contains(rest, "still the placeholder") {
			t.Errorf("shipped agent.yaml rejected for something else than a placeholder: %s", l)
		}
		fields = append(fields, field)
	}
	if got, want := strings.Join(fields, " "), "device_id site mqtt.username mqtt.password"; got != want {
		t.Errorf("placeholders reported in %s, want %s", got, want)
	}
	filled := strings.ReplaceAll(string(data), config.Placeholder, "gw-0001")
	cfg, err := config.Parse([]byte(filled))
	if err != nil {
		t.Fatalf("shipped agent.yaml with its placeholders filled in rejected: %v", err)
	}
	if !strings.HasPrefix(cfg.Buffer.Dir, "/var/lib/gridedge/") || !strings.HasPrefix(cfg.StateDir, "/var/lib/gridedge/") {
		t.Errorf("buffer %q and state %q must be under /var/lib/gridedge, the unit's only writable path", cfg.Buffer.Dir, cfg.StateDir)
	}
}

// unit is a parsed systemd unit: section → key → values in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Errorf("%s:%d: not key=value inside a section: %q", path, n, line)
				continue
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unit) last(section, key string) (string, bool) {
	v := u[section][key]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

func checkUnit(t *testing.T, path string, want map[string]string, absent []string) unit {
	t.Helper()
	u := parseUnit(t, path)
	for _, s := range []string{"Unit", "Service", "Install"} {
		if u[s] == nil {
			t.Errorf("%s: no [%s] section", path, s)
		}
	}
	for k, v := range want {
		got, ok := u.last("Service", k)
		switch {
		case !ok:
			t.Errorf("%s: [Service] %s missing", path, k)
		case v != "*" && got != v:
			t.Errorf("%s: %s=%q, want %q", path, k, got, v)
		}
	}
	for _, k := range absent {
		if _, ok := u.last("Service", k); ok {
			t.Errorf("%s: %s must not be set", path, k)
		}
	}
	if got, _ := u.last("Install", "WantedBy"); got != "multi-user.target" {
		t.Errorf("%s: WantedBy=%q", path, got)
	}
	verifyWithSystemd(t, path)
	return u
}

// verifyWithSystemd runs systemd-analyze verify when it is installed and
// fails on any directive systemd does not know (the missing executable is
// expected on a build host).
func verifyWithSystemd(t *testing.T, path string) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Logf("systemd-analyze not installed; %s checked by the parser only", path)
		return
	}
	out, _ := exec.Command("systemd-analyze", "verify", "--man=no", path).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" || strings.Contains(line, "is not executable") {
			continue
		}
		t.Errorf("systemd-analyze verify %s: %s", path, line)
	}
}

func TestAgentUnit(t *testing.T) {
	u := checkUnit(t, "systemd/gridedge-agent.service", map[string]string{
		"Type":                    "notify",
		"WatchdogSec":             "*",
		"Restart":                 "always",
		"User":                    "gridedge",
		"StateDirectory":          "gridedge",
		"ReadWritePaths":          "/var/lib/gridedge",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"CapabilityBoundingSet":   "",
		"SupplementaryGroups":     "i2c spi gpio dialout",
		"ExecStart":               "/usr/bin/gridedge-agent -config /etc/gridedge/agent.yaml",
		"SystemCallArchitectures": "native",
	}, []string{"ProtectClock", "PrivateDevices", "ProcSubset"})
	// The clock needs adjtimex through the system-call filter. Filter lines
	// apply in order, and a later deny of @clock, @privileged (which holds
	// @clock) or adjtimex itself takes it away again.
	allowedAt, deniedAt := -1, -1
	for i, f := range u["Service"]["SystemCallFilter"] {
		switch {
		case strings.HasPrefix(f, "~") && (strings.Contains(f, "@clock") || strings.Contains(f, "@privileged") || strings.Contains(f, "adjtimex")):
			deniedAt = i
		case !strings.HasPrefix(f, "~") && strings.Contains(f, "adjtimex"):
			allowedAt = i
		}
	}
	if allowedAt < 0 || deniedAt > allowedAt {
		t.Errorf("SystemCallFilter lines %q leave adjtimex denied", u["Service"]["SystemCallFilter"])
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		out, _ := exec.Command("systemd-analyze", "security", "--offline=true", "systemd/gridedge-agent.service").CombinedOutput()
		if !bytes.Contains(out, []byte("adjtimex is allowed")) {
			t.Errorf("systemd-analyze security does not report adjtimex as allowed:\n%s", out)
		}
	}
	if got, _ := u.last("Unit", "StartLimitIntervalSec"); got != "0" {
		t.Errorf("StartLimitIntervalSec=%q, want 0 (never stop restarting)", got)
	}
}

func TestCollectorUnit(t *testing.T) {
	u := checkUnit(t, "systemd/gridedge-collector.service", map[string]string{
		"Restart":         "always",
		"StateDirectory":  "gridedge-collector",
		"NoNewPrivileges": "yes",
		"ProtectSystem":   "strict",
		"ExecStart":       "*",
	}, nil)
	exec, _ := u.last("Service", "ExecStart")
	if !strings.Contains(exec, "-data-dir /var/lib/gridedge-collector") {
		t.Errorf("collector ExecStart %q must keep its store in the state directory", exec)
	}
}

func TestPackagedFilesExist(t *testing.T) {
	for _, f := range []string{"pkg/scripts/preinstall.sh", "pkg/scripts/postinstall.sh", "pkg/scripts/preremove.sh",
		"pkg/scripts/postremove.sh", "pkg/udev-gridedge.rules", "mosquitto/mosquitto.conf", "mosquitto/acl"} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
	groups := parseUnit(t, "systemd/gridedge-agent.service")["Service"]["SupplementaryGroups"]
	pre, err := os.ReadFile("pkg/scripts/preinstall.sh")
	if err != nil {
		t.Fatal(err)
	}
	// Every supplementary group must be in the preinst's list of groups to
	// create, or systemd refuses to start the unit.
	var created []string
	for _, line := range strings.Split(string(pre), "\n") {
		if list, ok := strings.CutPrefix(strings.TrimSpace(line), "for g in "); ok {
			list, _, _ = strings.Cut(list, ";")
			created = append(created, strings.Fields(list)...)
		}
	}
	for _, g := range strings.Fields(strings.Join(groups, " ")) {
		if !slices.Contains(created, g) {
			t.Errorf("preinst creates groups %v, not %s named in SupplementaryGroups", created, g)
		}
	}
}
