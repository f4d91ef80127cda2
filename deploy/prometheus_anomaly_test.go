package deploy_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridedge/gridedge/cloud/analytics"
)

// The analytics rules pass their promtool unit tests (promtool comes with
// Debian's prometheus package).
func TestAnomalyRulesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus)")
	}
	for _, args := range [][]string{{"check", "rules", "anomaly.yml"}, {"test", "rules", "anomaly_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus/rules"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// Every analytics metric the rules use is one the collector exports.
func TestAnomalyRulesUseExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile("prometheus/rules/anomaly.yml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := analytics.New(analytics.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.Metrics()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, mf := range mfs {
		exported[mf.GetName()] = true
	}
	used := regexp.MustCompile(`gridedge_analytics_[a-z_]+`).FindAllString(string(raw), -1)
	if len(used) == 0 {
		t.Fatal("the rules use no analytics metric")
	}
	for _, name := range used {
		if !exported[name] {
			t.Errorf("anomaly.yml uses %s, which the collector does not export", name)
		}
	}
}
