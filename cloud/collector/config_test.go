package collector

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/wire"
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
	if names := pipelineNames(DefaultConfig().Pipelines); strings.Join(names, ",") != "power_1m,energy_15m,energy_daily,appliance_sessions,power_snapshots" {
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

func TestHTTPAddrOffLoopbackNeedsTokensOrTheFlag(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MQTTURL = "tcp://127.0.0.1:1883"
	for addr, ok := range map[string]bool{"127.0.0.1:8080": true, "localhost:0": true, "[::1]:8080": true,
		":8080": false, "0.0.0.0:8080": false, "192.0.2.10:8080": false, "[::]:8080": false} {
		cfg.HTTPAddr, cfg.HTTPTokensFile, cfg.HTTPAllowAnonymous = addr, "", false
		err := cfg.Validate()
		if (err == nil) != ok {
			t.Errorf("http_addr %s without tokens: %v", addr, err)
		}
		if err != nil && !strings.Contains(err.Error(), "http_tokens_file") {
			t.Errorf("http_addr %s: %v; want directions naming http_tokens_file", addr, err)
		}
		cfg.HTTPTokensFile = "/etc/gridedge/api-tokens"
		if err := cfg.Validate(); err != nil {
			t.Errorf("http_addr %s with tokens: %v", addr, err)
		}
		cfg.HTTPTokensFile, cfg.HTTPAllowAnonymous = "", true
		if err := cfg.Validate(); err != nil {
			t.Errorf("http_addr %s with http_allow_anonymous: %v", addr, err)
		}
	}
}

func TestPlausibilityOverridesAndTurnsOff(t *testing.T) {
	cfg, err := ParseConfig([]byte("mqtt_url: tcp://b:1883\nplausibility:\n  voltage: {min: 0, max: 500}\n  temperature: {min: -.inf, max: .inf}\n"), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lim, err := cfg.Limits()
	if err != nil {
		t.Fatal(err)
	}
	if r := lim[wire.Quantity_QUANTITY_VOLTAGE]; r.Max != 500 {
		t.Errorf("voltage range %+v, want max 500", r)
	}
	if _, ok := lim[wire.Quantity_QUANTITY_TEMPERATURE]; ok {
		t.Error("temperature still checked after -.inf..inf")
	}
	if _, ok := lim[wire.Quantity_QUANTITY_ACTIVE_POWER]; !ok {
		t.Error("active_power's default range lost")
	}
	for _, bad := range []string{"plausibility: {watts: {min: 0, max: 1}}", "plausibility: {voltage: {min: 5, max: 1}}", "plausibility: {voltage: {min: .nan, max: 1}}"} {
		cfg, err := ParseConfig([]byte("mqtt_url: tcp://b:1883\n"+bad+"\n"), "c.yaml")
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), "plausibility") {
			t.Errorf("%s: %v, want a plausibility error", bad, err)
		}
	}
}

// FuzzParseConfig: any file either fails with an error or yields a
// configuration whose validation does not panic.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("mqtt_url: tcp://b:1883\nhttp_addr: 0.0.0.0:8080\nhttp_tokens_file: /t\nmin_free_bytes: 1\nmax_future: 10m\n"))
	f.Add([]byte("plausibility:\n  voltage: {min: 0, max: 500}\npipelines:\n  - name: p\n    inputs: [{quantity: active_power}]\n    window: {kind: tumbling, size: 1m}\n    aggregations: [count]\n"))
	f.Add([]byte("window_sizes: [1m, 15m]\npartitions: 0\nconflict_limit: -1\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := ParseConfig(raw, "fuzz.yaml")
		if err != nil {
			return
		}
		if err := cfg.Validate(); err == nil {
			if _, err := cfg.Limits(); err != nil {
				t.Fatalf("valid configuration with bad limits: %v", err)
			}
		}
	})
}
