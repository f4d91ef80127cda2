package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/edge/status"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigErrorNamesTheField(t *testing.T) {
	path := writeConfig(t, `
device_id: gw-1
site: home
state_dir: /tmp/s
mqtt: {url: "tcp://127.0.0.1:1883"}
buffer: {dir: /tmp/b}
channels: [{name: a, driver: ina219}, {name: b, driver: ina219}, {name: c, driver: ina219, interval: 0s}]
`)
	var out, errOut bytes.Buffer
	if code := run([]string{"-config", path}, &out, &errOut); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), `channels[2].interval: must be > 0, got "0s"`) {
		t.Fatalf("stderr: %s", errOut.String())
	}
}

func TestHelpListsDrivers(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-h"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"ina219", "pzem004t", "-config", "status"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestStatusCommand(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, fmt.Sprintf(`
device_id: gw-1
site: home
state_dir: %s
mqtt: {url: "tcp://127.0.0.1:1883"}
buffer: {dir: %s}
channels: [{name: mains, driver: ina219}]
`, dir, filepath.Join(dir, "buf")))
	var out, errOut bytes.Buffer
	if code := run([]string{"status", "-config", path}, &out, &errOut); code != 1 {
		t.Fatalf("no status file: exit %d, want 1", code)
	}
	snap := status.Snapshot{DeviceID: "gw-1", WrittenAt: time.Now(), Interval: status.Duration(5 * time.Second), Buffered: 12,
		SenseErrors: map[string]uint64{"mains": 4}, ClockQuality: "corrected"}
	if err := status.Write(dir, snap); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"status", "-config", path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"running", "12 readings unacked", "corrected", "mains=4"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run([]string{"status", "-json", "-config", path}, &out, &errOut); code != 0 || !strings.Contains(out.String(), `"buffered_readings": 12`) {
		t.Fatalf("json: exit %d\n%s", code, out.String())
	}
}

func TestCheckFlag(t *testing.T) {
	body := `
device_id: gw-1
site: home
state_dir: /tmp/s
mqtt: {url: "tcp://127.0.0.1:1883"}
buffer: {dir: /tmp/b}
channels: [{name: a, driver: ina219}, {name: b, driver: ina2019}]
`
	var out, errOut bytes.Buffer
	if code := run([]string{"-check", "-config", writeConfig(t, body)}, &out, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), `channels[1].driver: unknown driver "ina2019"`) {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"-check", "-config", writeConfig(t, strings.Replace(body, "ina2019", "sdm120", 1))}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "ok (2 channels)") {
		t.Fatalf("exit %d, stdout %s stderr %s", code, out.String(), errOut.String())
	}
}
