package deploy_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridedge/gridedge/cloud/analytics"
)

// Every analytics metric the rules use is one the collector exports.
func TestAnomalyRulesUseExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile("prometheus/rules/anomaly.rules.yml")
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
			t.Errorf("anomaly.rules.yml uses %s, which the collector does not export", name)
		}
	}
}
