package observability

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Dashboard is the part of a Grafana dashboard JSON the tests read.
type Dashboard struct {
	UID, Title    string
	SchemaVersion int
	Panels        []struct {
		ID          int
		Title, Type string
		Datasource  struct{ Type, UID string }
		GridPos     struct{ X, Y, W, H int }
		Targets     []struct {
			RefID      string `json:"refId"`
			Expr       string
			RawSQL     string `json:"rawSql"`
			Datasource struct{ Type, UID string }
		}
	}
}

func dashboard(t *testing.T, path string) Dashboard {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d Dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return d
}

type datasource struct {
	Name, UID, Type, URL string
}

func provisionedDatasources(t *testing.T) map[string]datasource {
	t.Helper()
	out := map[string]datasource{}
	for _, p := range glob(t, "../grafana/provisioning/datasources/*.yml") {
		var f struct {
			APIVersion  int `yaml:"apiVersion"`
			Datasources []datasource
		}
		readYAML(t, p, &f)
		if f.APIVersion != 1 {
			t.Errorf("%s: apiVersion %d, want 1", p, f.APIVersion)
		}
		for _, d := range f.Datasources {
			if _, dup := out[d.UID]; dup {
				t.Errorf("%s: data source uid %s twice", p, d.UID)
			}
			out[d.UID] = d
		}
	}
	return out
}

// The provisioning defines the two data sources the dashboards name, and
// a file provider; every dashboard has a unique uid and only panels on a
// provisioned data source, each with a query.
func TestGrafanaProvisioningAndDashboards(t *testing.T) {
	ds := provisionedDatasources(t)
	for uid, typ := range map[string]string{"gridedge-prometheus": "prometheus", "gridedge-postgres": "grafana-postgresql-datasource"} {
		if ds[uid].Type != typ {
			t.Errorf("data source %s: type %q, want %q", uid, ds[uid].Type, typ)
		}
	}
	var prov struct {
		Providers []struct {
			Type    string
			Options struct{ Path string }
		}
	}
	readYAML(t, "../grafana/provisioning/dashboards/gridedge.yml", &prov)
	if len(prov.Providers) != 1 || prov.Providers[0].Type != "file" || prov.Providers[0].Options.Path != grafanaDashboardsPath {
		t.Errorf("dashboard provider %+v, want one file provider on %s", prov.Providers, grafanaDashboardsPath)
	}
	uids := map[string]string{}
	for _, p := range glob(t, "../grafana/dashboards/*.json") {
		d := dashboard(t, p)
		if d.UID == "" || d.Title == "" || len(d.UID) > 40 {
			t.Errorf("%s: needs a uid (at most 40 characters) and a title", p)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share the uid %s", p, other, d.UID)
		}
		uids[d.UID] = p
		ids := map[int]bool{}
		for _, pn := range d.Panels {
			if ids[pn.ID] {
				t.Errorf("%s: panel id %d twice", p, pn.ID)
			}
			ids[pn.ID] = true
			if pn.Type == "row" {
				continue
			}
			if _, ok := ds[pn.Datasource.UID]; !ok {
				t.Errorf("%s: panel %q: data source %q is not provisioned", p, pn.Title, pn.Datasource.UID)
			}
			if len(pn.Targets) == 0 || pn.GridPos.W == 0 || pn.GridPos.H == 0 {
				t.Errorf("%s: panel %q has no query or no size", p, pn.Title)
			}
			for _, tg := range pn.Targets {
				if tg.Datasource.UID != pn.Datasource.UID {
					t.Errorf("%s: panel %q: target %s on %q, the panel on %q", p, pn.Title, tg.RefID, tg.Datasource.UID, pn.Datasource.UID)
				}
				if strings.TrimSpace(tg.Expr+tg.RawSQL) == "" {
					t.Errorf("%s: panel %q: target %s is empty", p, pn.Title, tg.RefID)
				}
			}
		}
	}
}

// The fleet-health dashboard shows what the operators watch.
func TestFleetHealthDashboardCoversTheFleet(t *testing.T) {
	d := dashboard(t, filepath.Join("../grafana/dashboards", "fleet-health.json"))
	var all strings.Builder
	for _, pn := range d.Panels {
		if pn.Datasource.UID != "gridedge-prometheus" {
			t.Errorf("panel %q: data source %q, want gridedge-prometheus", pn.Title, pn.Datasource.UID)
		}
		for _, tg := range pn.Targets {
			all.WriteString(tg.Expr + "\n")
		}
	}
	for what, metric := range map[string]string{
		"devices online":  "gridedge_collector_devices{",
		"clock quality":   "gridedge_collector_devices_clock",
		"buffer backlog":  "gridedge_collector_devices_buffered_readings",
		"dead letters":    "gridedge_collector_deadletters_total",
		"conflicts":       "gridedge_collector_readings_conflict_total",
		"ingest rate":     "gridedge_collector_readings_logged_total",
		"collector lag":   "gridedge_collector_lag_records",
		"disk":            "gridedge_collector_disk_free_bytes",
		"offline devices": "gridedge_collector_device_offline_seconds",
	} {
		if !strings.Contains(all.String(), metric) {
			t.Errorf("no panel shows %s (%s)", what, metric)
		}
	}
}

// lockedBuffer collects a child process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// grafanaDashboardsPath is where the Compose files mount
// deploy/grafana/dashboards and the provider reads them.
const grafanaDashboardsPath = "/var/lib/grafana/dashboards/gridedge"
