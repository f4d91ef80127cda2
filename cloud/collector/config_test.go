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
