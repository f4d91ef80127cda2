package main

import (
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/poll"
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

// -pipelines replaces the pipelines of -config, and a bad pipelines file
// is reported with its line.
func TestPipelinesFlag(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(conf, []byte("mqtt_url: tcp://b:1883\npipelines:\n  - {name: from_config, inputs: [{}], window: {kind: day}, aggregations: [count]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pipes := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(pipes, []byte("pipelines:\n  - {name: from_flag, inputs: [{}], window: {kind: tumbling, size: 1m}, aggregations: [mean]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := parseFlags([]string{"-config", conf}, io.Discard)
	if err != nil || len(cfg.Pipelines) != 1 || cfg.Pipelines[0].Name != "from_config" {
		t.Fatalf("-config pipelines: %+v %v", cfg.Pipelines, err)
	}
	cfg, _, err = parseFlags([]string{"-config", conf, "-pipelines", pipes}, io.Discard)
	if err != nil || len(cfg.Pipelines) != 1 || cfg.Pipelines[0].Name != "from_flag" {
		t.Fatalf("-pipelines: %+v %v", cfg.Pipelines, err)
	}
	if err := os.WriteFile(pipes, []byte("pipelines:\n  - name: x\n    window: {kind: fortnight}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := parseFlags([]string{"-mqtt-url", "tcp://b:1", "-pipelines", pipes}, io.Discard); err == nil || !strings.Contains(err.Error(), "-pipelines") || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("bad pipelines file: %v", err)
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

const mainArgsEnv = "GRIDEDGE_COLLECTOR_MAIN_ARGS"

// TestMainProcess runs main() when re-executed by TestBinaryServesAndStopsOnSIGTERM.
func TestMainProcess(t *testing.T) {
	args := os.Getenv(mainArgsEnv)
	if args == "" {
		t.Skip("only runs as a child process")
	}
	os.Args = append([]string{"gridedge-collector"}, strings.Fields(args)...)
	main()
}

func TestBinaryServesAndStopsOnSIGTERM(t *testing.T) {
	if os.Getenv(mainArgsEnv) != "" {
		t.Skip("child")
	}
	dir := t.TempDir()
	addrFile := filepath.Join(dir, "http.addr")
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainProcess$")
	cmd.Env = append(os.Environ(), mainArgsEnv+"=-embedded-broker 127.0.0.1:0 -http-addr 127.0.0.1:0 -data-dir "+filepath.Join(dir, "data")+" -http-addr-file "+addrFile)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	addr := poll.For(t, 60*time.Second, "the address file", func() (string, error) {
		b, err := os.ReadFile(addrFile)
		return strings.TrimSpace(string(b)), err
	}, func(a string) bool { return a != "" })
	poll.For(t, 60*time.Second, "/healthz to answer 200", func() (int, error) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}, func(code int) bool { return code == http.StatusOK })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// A bad flag is reported once, on one line, without the usage text.
func TestBadFlagPrintedOnce(t *testing.T) {
	if os.Getenv(mainArgsEnv) != "" {
		t.Skip("child")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainProcess$")
	cmd.Env = append(os.Environ(), mainArgsEnv+"=-mqtt-ulr tcp://x:1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("err = %v, want exit 2", err)
	}
	want := "gridedge-collector: flag provided but not defined: -mqtt-ulr (gridedge-collector -h lists the flags)\n"
	if stderr.String() != want {
		t.Fatalf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}
}

func TestHelpPrintsUsage(t *testing.T) {
	var out strings.Builder
	_, _, err := parseFlags([]string{"-h"}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	if !strings.HasPrefix(out.String(), "Usage: gridedge-collector [flags]") || !strings.Contains(out.String(), "-mqtt-url") {
		t.Fatalf("usage:\n%s", out.String())
	}
}
