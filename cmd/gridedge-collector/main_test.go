package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFlagsOverrideFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	conf := "mqtt_url: tcp://broker:1883\nhttp_addr: 127.0.0.1:9000\nwindow_sizes: [1m, 15m]\nsite_tz: Europe/Paris\ndata_dir: " + dir + "\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := parseFlags([]string{"-config", path, "-http-addr", "127.0.0.1:0", "-window-sizes", "30s,1h"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MQTTURL != "tcp://broker:1883" || cfg.SiteTZ != "Europe/Paris" || cfg.HTTPAddr != "127.0.0.1:0" ||
		len(cfg.WindowSizes) != 2 || cfg.WindowSizes[0] != 30*time.Second || cfg.WindowSizes[1] != time.Hour {
		t.Fatalf("config %+v", cfg)
	}
}

func TestErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("mqtt_ulr: tcp://x:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for want, args := range map[string][]string{
		"mqtt_ulr":     {"-config", bad},
		"window-sizes": {"-mqtt-url", "tcp://x:1", "-window-sizes", "1 minute"},
		"mqtt_url":     {"-mqtt-url", "localhost"},
		"site_tz":      {"-mqtt-url", "tcp://x:1", "-site-tz", "Nowhere/City"},
		"log-level":    {"-log-level", "loud"},
	} {
		_, _, err := parseFlags(args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: error %v does not name %q", args, err, want)
		}
	}
}
