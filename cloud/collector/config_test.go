package collector

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfigReadsDurationsAndRejectsUnknownKeys(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("mqtt_url: tcp://b:1883\nwindow_sizes: [1m, 15m]\nout_of_orderness: 30s\nack_timeout: 2s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.WindowSizes) != 2 || cfg.WindowSizes[1] != 15*time.Minute || cfg.OutOfOrderness != 30*time.Second || cfg.AckTimeout != 2*time.Second {
		t.Fatalf("config %+v", cfg)
	}
	if cfg.ShareGroup != "gridedge" || cfg.AckQueue != DefaultConfig().AckQueue {
		t.Fatalf("defaults not kept for unset keys: %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err := LoadConfig(empty); err != nil || cfg.HTTPAddr != DefaultConfig().HTTPAddr {
		t.Fatalf("empty file: %+v %v", cfg, err)
	}

	for name, body := range map[string]string{
		"window_sizs":  "window_sizs: [1m]\n",
		"window_sizes": "window_sizes: [soon]\n",
	} {
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), name) && !strings.Contains(err.Error(), "soon") {
			t.Errorf("%s: error %v", name, err)
		}
	}
}

// The collector file's pipelines section is the window configuration;
// its errors name the collector file's own line.
func TestLoadConfigPipelinesSection(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	body := `mqtt_url: tcp://b:1883
# comments and other keys around the section
pipelines:
  - name: watts_5m
    inputs: [{quantity: active_power}]
    window: {kind: tumbling, size: 5m}
    aggregations: [mean, max]
site_tz: Europe/Paris
`
	if err := os.WriteFile(good, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Pipelines) != 1 || cfg.Pipelines[0].Name != "watts_5m" || cfg.Pipelines[0].Window.Size != 5*time.Minute || cfg.SiteTZ != "Europe/Paris" {
		t.Fatalf("pipelines %+v, site_tz %q", cfg.Pipelines, cfg.SiteTZ)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// Absent: the shipped pipelines.
	if names := pipelineNames(DefaultConfig().Pipelines); strings.Join(names, ",") != "power_1m,energy_15m,energy_daily" {
		t.Fatalf("default pipelines %v", names)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(body, "kind: tumbling", "kind: wobbly", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(bad); err == nil || !strings.Contains(err.Error(), "line 6") || !strings.Contains(err.Error(), "wobbly") {
		t.Fatalf("bad window kind: %v, want an error naming line 6", err)
	}

	file := filepath.Join(dir, "pipes.yaml")
	if err := os.WriteFile(file, []byte("pipelines:\n  - name: x\n    colour: red\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPipelines(file); err == nil || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), file) {
		t.Fatalf("pipelines file error %v, want its path and line 3", err)
	}
}
