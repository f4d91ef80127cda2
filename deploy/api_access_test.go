package deploy_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/gridedge/gridedge/cloud/collector"
)

// collectorArgs returns the collector command line each shipped deployment
// runs.
func collectorArgs(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^CMD (\[.*\])$`).FindSubmatch(df)
	if m == nil {
		t.Fatal("Dockerfile: no CMD [...] line")
	}
	var cmd []string
	if err := json.Unmarshal(m[1], &cmd); err != nil {
		t.Fatalf("Dockerfile CMD: %v", err)
	}
	out["Dockerfile CMD"] = cmd
	compose := documents(t, "compose/docker-compose.yml")[0]
	svc := compose["services"].(map[string]any)["collector"].(map[string]any)
	out["compose"] = strs(svc["command"])
	for _, doc := range documents(t, "k8s/20-collector.yaml") {
		if doc["kind"] != "StatefulSet" {
			continue
		}
		spec := doc["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
		out["k8s"] = strs(spec["containers"].([]any)[0].(map[string]any)["args"])
	}
	exec, _ := parseUnit(t, "systemd/gridedge-collector.service").last("Service", "ExecStart")
	out["systemd"] = strings.Fields(exec)[1:]
	cluster := documents(t, "compose/docker-compose.cluster.yml")[0]
	for name, svc := range cluster["services"].(map[string]any) {
		if cmd, ok := svc.(map[string]any)["command"]; ok && (strings.HasPrefix(name, "worker") || strings.HasPrefix(name, "intake") || name == "sink") {
			out["compose cluster "+name] = strs(cmd)
		}
	}
	for _, path := range []string{"k8s/cluster/30-intake.yaml", "k8s/cluster/40-workers.yaml", "k8s/cluster/50-sink.yaml"} {
		for _, doc := range documents(t, path) {
			if doc["kind"] != "StatefulSet" && doc["kind"] != "Deployment" {
				continue
			}
			spec := doc["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
			out[path] = strs(spec["containers"].([]any)[0].(map[string]any)["args"])
		}
	}
	return out
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// Every shipped deployment serves the HTTP API either on loopback or with
// bearer tokens (an intake node serves no data, only /healthz and
// /metrics): the collector's own validation accepts its command line, and
// none opts out with -http-allow-anonymous.
func TestShippedDeploymentsProtectTheAPI(t *testing.T) {
	all := collectorArgs(t)
	if len(all) != 12 {
		t.Fatalf("found %d collector command lines, want Dockerfile, compose, k8s, systemd and the eight cluster nodes: %v", len(all), all)
	}
	for where, args := range all {
		if strings.Contains(strings.Join(args, " "), "-http-allow-anonymous") {
			t.Errorf("%s serves the API anonymously: %v", where, args)
		}
		cfg := collector.DefaultConfig()
		cfg.MQTTURL = "tcp://broker:1883"
		if role := flagValue(args, "-role"); role != "" {
			cfg.Role = role
			cfg.Kafka.Brokers = []string{"kafka:9092"}
		}
		cfg.HTTPAddr = flagValue(args, "-http-addr")
		cfg.HTTPTokensFile = flagValue(args, "-http-tokens-file")
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", where, err)
		}
		if where == "Dockerfile CMD" || where == "systemd" {
			host := cfg.HTTPAddr[:strings.LastIndex(cfg.HTTPAddr, ":")]
			if !collector.IsLoopback(host) {
				t.Errorf("%s: the default binds %s; it must stay on loopback", where, cfg.HTTPAddr)
			}
		}
	}
}
