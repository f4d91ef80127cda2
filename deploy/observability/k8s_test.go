package observability

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the generated deploy/k8s manifests from deploy/prometheus, deploy/grafana and deploy/postgres")

// generated are the deploy/k8s manifests made of shipped files: each holds
// ConfigMaps whose data are the files matching the globs, by base name.
var generated = []struct {
	manifest string
	maps     []struct{ name, glob string }
}{
	{"31-prometheus-rules.yaml", []struct{ name, glob string }{{"prometheus-rules", "../prometheus/rules/*.rules.yml"}}},
	{"41-grafana-config.yaml", []struct{ name, glob string }{
		{"grafana-datasources", "../grafana/provisioning/datasources/*.yml"},
		{"grafana-dashboard-providers", "../grafana/provisioning/dashboards/*.yml"},
		{"grafana-dashboards", "../grafana/dashboards/*.json"},
	}},
	{"51-postgres-init.yaml", []struct{ name, glob string }{{"postgres-init", "../postgres/init/*.sql"}}},
}

// k8sConfigMap returns the data of the ConfigMap name in deploy/k8s.
func k8sConfigMap(t *testing.T, name string) map[string]string {
	t.Helper()
	for _, p := range glob(t, "../k8s/*.yaml") {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc struct {
				Kind     string
				Metadata struct{ Name string }
				Data     map[string]string
			}
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if doc.Kind == "ConfigMap" && doc.Metadata.Name == name {
				return doc.Data
			}
		}
	}
	t.Fatalf("no ConfigMap %s in deploy/k8s", name)
	return nil
}

// configMaps renders ConfigMaps carrying the files of each glob.
func configMaps(t *testing.T, maps []struct{ name, glob string }) []byte {
	t.Helper()
	var b strings.Builder
	b.WriteString(`# Generated from files in deploy/prometheus, deploy/grafana and deploy/postgres: do not edit.
# After changing those files, regenerate it with
#   go test ./deploy/observability/ -run TestK8sConfigMapsMatchTheFiles -update
`)
	for i, m := range maps {
		if i > 0 {
			b.WriteString("---\n")
		}
		fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: gridedge\ndata:\n", m.name)
		for _, p := range glob(t, m.glob) {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(data) == 0 || data[len(data)-1] != '\n' || data[0] == ' ' || data[0] == '\t' {
				t.Fatalf("%s: a ConfigMap file must end with a newline and not start with a blank", p)
			}
			fmt.Fprintf(&b, "  %s: |\n", filepath.Base(p))
			for _, line := range strings.SplitAfter(string(data[:len(data)-1]), "\n") {
				line = strings.TrimSuffix(line, "\n")
				if line == "" {
					b.WriteString("\n")
					continue
				}
				b.WriteString("    " + line + "\n")
			}
		}
	}
	return []byte(b.String())
}

// The generated manifests carry exactly the shipped files.
func TestK8sConfigMapsMatchTheFiles(t *testing.T) {
	for _, g := range generated {
		path := filepath.Join("../k8s", g.manifest)
		want := configMaps(t, g.maps)
		if *update {
			must(t, os.WriteFile(path, want, 0o644))
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the files it carries; regenerate it: go test ./deploy/observability/ -run TestK8sConfigMapsMatchTheFiles -update", path)
			continue
		}
		for _, m := range g.maps {
			data := k8sConfigMap(t, m.name)
			for _, p := range glob(t, m.glob) {
				file, _ := os.ReadFile(p)
				if data[filepath.Base(p)] != string(file) {
					t.Errorf("ConfigMap %s: %s does not decode to the file's content", m.name, filepath.Base(p))
				}
			}
		}
	}
}
