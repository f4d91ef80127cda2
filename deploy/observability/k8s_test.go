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

var update = flag.Bool("update", false, "rewrite deploy/k8s/31-prometheus-rules.yaml from deploy/prometheus/rules")

const k8sRules = "../k8s/31-prometheus-rules.yaml"

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

// rulesConfigMap is the ConfigMap manifest carrying the rule files.
func rulesConfigMap(t *testing.T) []byte {
	t.Helper()
	var b strings.Builder
	b.WriteString(`# Generated from deploy/prometheus/rules/*.rules.yml: do not edit. After a
# change to the rules, regenerate it with
#   go test ./deploy/observability/ -run TestK8sRulesMatchTheRuleFiles -update
apiVersion: v1
kind: ConfigMap
metadata:
  name: prometheus-rules
  namespace: gridedge
data:
`)
	for _, p := range glob(t, "../prometheus/rules/*.rules.yml") {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "  %s: |\n", filepath.Base(p))
		for _, line := range strings.SplitAfter(strings.TrimRight(string(data), "\n")+"\n", "\n") {
			if strings.TrimSpace(line) == "" {
				b.WriteString(strings.TrimLeft(line, " \t"))
				continue
			}
			b.WriteString("    " + line)
		}
	}
	return []byte(b.String())
}

// The Kubernetes rules ConfigMap carries exactly the shipped rule files.
func TestK8sRulesMatchTheRuleFiles(t *testing.T) {
	want := rulesConfigMap(t)
	if *update {
		must(t, os.WriteFile(k8sRules, want, 0o644))
	}
	got, err := os.ReadFile(k8sRules)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from deploy/prometheus/rules; regenerate it: go test ./deploy/observability/ -run TestK8sRulesMatchTheRuleFiles -update", k8sRules)
	}
	data := k8sConfigMap(t, "prometheus-rules")
	for _, p := range glob(t, "../prometheus/rules/*.rules.yml") {
		file, _ := os.ReadFile(p)
		if data[filepath.Base(p)] != string(file) {
			t.Errorf("ConfigMap prometheus-rules: %s does not decode to the file's content", filepath.Base(p))
		}
	}
}
