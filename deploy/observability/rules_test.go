package observability

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// need skips when a tool is missing (.ci/install-deps installs them).
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (.ci/install-deps installs it)", tool)
		}
	}
}

func glob(t *testing.T, pattern string) []string {
	t.Helper()
	paths, err := filepath.Glob(pattern)
	if err != nil || len(paths) == 0 {
		t.Fatalf("no files match %s: %v", pattern, err)
	}
	return paths
}

func promtool(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("promtool", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestRulesPassPromtoolCheck(t *testing.T) {
	need(t, "promtool")
	promtool(t, append([]string{"check", "rules"}, glob(t, "../prometheus/rules/*.rules.yml")...)...)
}

func TestRulesPassTheirUnitTests(t *testing.T) {
	need(t, "promtool")
	out := promtool(t, append([]string{"test", "rules"}, glob(t, "../prometheus/tests/*.test.yml")...)...)
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules:\n%s", out)
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string
		Rules []struct {
			Alert, Record, Expr, For string
			Labels                   map[string]string
			Annotations              map[string]string
		}
	}
}

// rules returns every rule of the shipped rule files.
func rules(t *testing.T) (alerts map[string]string, exprs []string) {
	t.Helper()
	alerts = map[string]string{}
	for _, p := range glob(t, "../prometheus/rules/*.rules.yml") {
		var f ruleFile
		readYAML(t, p, &f)
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				exprs = append(exprs, r.Expr)
				if r.Alert != "" {
					alerts[r.Alert] = r.Expr
				}
			}
		}
	}
	return alerts, exprs
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// Every alert has a unit test in which it fires and one in which it stays
// silent, and carries a severity and a summary.
func TestEveryAlertIsTestedFiringAndSilent(t *testing.T) {
	alerts, _ := rules(t)
	if len(alerts) < 15 {
		t.Fatalf("only %d alerts", len(alerts))
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, p := range glob(t, "../prometheus/tests/*.test.yml") {
		var f struct {
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string
					ExpAlerts []map[string]any `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			}
		}
		readYAML(t, p, &f)
		for _, tc := range f.Tests {
			for _, a := range tc.AlertRuleTest {
				if _, ok := alerts[a.Alertname]; !ok {
					t.Errorf("%s tests %s, which no rule file defines", p, a.Alertname)
				}
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				} else {
					silent[a.Alertname] = true
				}
			}
		}
	}
	for name := range alerts {
		if !fires[name] || !silent[name] {
			t.Errorf("alert %s: tested firing %v, silent %v; want both", name, fires[name], silent[name])
		}
	}
	for _, p := range glob(t, "../prometheus/rules/*.rules.yml") {
		var f ruleFile
		readYAML(t, p, &f)
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				if s := r.Labels["severity"]; s != "warning" && s != "critical" {
					t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
				}
				if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("%s: needs a summary and a description", r.Alert)
				}
			}
		}
	}
}

// The shipped Prometheus configurations pass promtool check config, with
// their absolute paths (/etc/prometheus, /run/secrets) moved under a
// temporary root holding the shipped rules and agent targets.
func TestPrometheusConfigsPassPromtool(t *testing.T) {
	need(t, "promtool")
	configs := map[string][]byte{}
	for _, p := range glob(t, "../prometheus/prometheus*.yml") {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		configs[p] = data
	}
	configs["k8s ConfigMap prometheus-config"] = []byte(k8sConfigMap(t, "prometheus-config")["prometheus.yml"])
	for name, data := range configs {
		root := t.TempDir()
		for _, dir := range []string{"etc/prometheus/rules", "etc/prometheus/agents", "etc/prometheus/secrets", "run/secrets"} {
			must(t, os.MkdirAll(filepath.Join(root, dir), 0o755))
		}
		for _, src := range glob(t, "../prometheus/rules/*.rules.yml") {
			copyFile(t, src, filepath.Join(root, "etc/prometheus/rules", filepath.Base(src)))
		}
		copyFile(t, "../prometheus/agents/agents.yml.example", filepath.Join(root, "etc/prometheus/agents/agents.yml"))
		must(t, os.WriteFile(filepath.Join(root, "run/secrets/prometheus-token"), []byte("token\n"), 0o600))
		must(t, os.WriteFile(filepath.Join(root, "etc/prometheus/secrets/token"), []byte("token\n"), 0o600))
		text := string(data)
		for _, prefix := range []string{"/etc/prometheus/", "/run/secrets/"} {
			text = strings.ReplaceAll(text, " "+prefix, " "+root+prefix)
			text = strings.ReplaceAll(text, `"`+prefix, `"`+root+prefix)
		}
		for _, line := range strings.Split(text, "\n") {
			if l := strings.TrimSpace(line); !strings.HasPrefix(l, "#") && strings.Contains(l, "/etc/prometheus") && !strings.Contains(l, root) {
				t.Fatalf("%s: a path was not moved under the test root: %s", name, l)
			}
		}
		path := filepath.Join(root, "prometheus.yml")
		must(t, os.WriteFile(path, []byte(text), 0o644))
		out := promtool(t, "check", "config", path)
		if !strings.Contains(out, "SUCCESS") || !strings.Contains(out, "rules found") {
			t.Errorf("%s: promtool check config found no rules:\n%s", name, out)
		}
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(dst, data, 0o644))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
