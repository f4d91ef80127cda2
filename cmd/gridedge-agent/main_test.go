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
	if code := run([]string{"-check", "-config", writeConfig(t, strings.Replace(body, "driver: ina2019", "driver: sdm120, options: {port: /dev/ttyUSB0}", 1))}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "ok (2 channels)") {
		t.Fatalf("exit %d, stdout %s stderr %s", code, out.String(), errOut.String())
	}
}

// -check applies each driver's option rules without opening a bus, and
// refuses the packaged file's placeholders; every problem is one line naming
// the field.
func TestCheckRejectsWhatTheDriversWould(t *testing.T) {
	const head = `
device_id: gw-1
site: home
state_dir: /tmp/s
mqtt: {url: "tcp://127.0.0.1:1883"}
buffer: {dir: /tmp/b}
`
	cases := []struct {
		name, channels string
		want           []string
	}{
		{"i2c address and negative shunt", `channels: [{name: a, driver: ina219, options: {address: 0x400, shunt_ohms: -0.1}}]`, []string{
			`channels[0].options.address: must be 0x40..0x4f (set by the A0/A1 pins), got 0x400`,
			`channels[0].options.shunt_ohms: must be > 0, got -0.1`,
		}},
		{"ina226 samples and current", `channels: [{name: a, driver: ina226, options: {samples: 3, max_current_a: -1}}]`, []string{
			`channels[0].options.max_current_a: must be > 0, got -1`,
			`channels[0].options.samples: must be one of [1 4 16 64 128 256 512 1024], got 3`,
		}},
		{"shunt range", `channels: [{name: a, driver: ina219, options: {shunt_ohms: 1, max_current_a: 3.2}}]`, []string{
			`channels[0].options.max_current_a: ina219: 3.200A × 1Ω = 3200 mV exceeds the 320 mV shunt range`,
		}},
		{"unknown option", `channels: [{name: a, driver: ina219, options: {adress: 0x41}}]`, []string{
			`channels[0].options.adress: unknown field (did you mean "address"?); known: bus, address, shunt_ohms, max_current_a, bus_range_v, samples`,
		}},
		{"quantity", `channels: [{name: a, driver: ina219, quantities: [energy]}]`, []string{
			`channels[0].quantities: driver ina219 cannot measure energy (it offers voltage, current, active_power)`,
		}},
		{"modbus", `channels: [{name: a, driver: pzem004t}, {name: b, driver: sdm630, options: {port: /dev/ttyS0, address: 250, phase: "4"}}]`, []string{
			`channels[0].options.port: required: the serial device, e.g. /dev/ttyUSB0`,
			`channels[1].options.phase: must be 1, 2, 3 or total, got "4"`,
		}},
		{"spi and gpio", `channels: [{name: a, driver: ade7953, options: {channel: c, spi_hz: 5000000}}, {name: b, driver: pulse, options: {edge: up}}]`, []string{
			`channels[0].options.channel: must be a or b, got "c"`,
			`channels[0].options.spi_hz: must be 1..2000000 (0 = 1 MHz), got 5000000`,
			`channels[1].options.pin: required: the GPIO name, e.g. GPIO17`,
			`channels[1].options.edge: must be falling or rising, got "up"`,
		}},
		{"simulated channel", `channels: [{name: kitchen, driver: sim-household}]`, []string{
			`channels[0].name: household profile has channels mains, sub1, sub2, sub3 and kettle, oven, washer, fridge, water_heater, not "kitchen"`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, head+tc.channels+"\n")
			var out, errOut bytes.Buffer
			if code := run([]string{"-check", "-config", path}, &out, &errOut); code != 2 {
				t.Fatalf("exit %d, want 2; stdout %s", code, out.String())
			}
			var want []string
			for _, w := range tc.want {
				want = append(want, "config "+path+": "+w)
			}
			if got := strings.TrimSpace(errOut.String()); got != strings.Join(want, "\n") {
				t.Fatalf("stderr:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
			}
		})
	}
}

func TestCheckRejectsPlaceholders(t *testing.T) {
	path := writeConfig(t, `
device_id: CHANGE-ME
site: home
state_dir: /tmp/s
mqtt: {url: "tcp://127.0.0.1:1883", password: CHANGE-ME}
buffer: {dir: /tmp/b}
channels: [{name: a, driver: ina219}]
`)
	var out, errOut bytes.Buffer
	if code := run([]string{"-check", "-config", path}, &out, &errOut); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	want := "config " + path + `: device_id (line 2): still the placeholder "CHANGE-ME": replace it with this installation's value` + "\n" +
		"config " + path + `: mqtt.password (line 5): still the placeholder "CHANGE-ME": replace it with this installation's value`
	if got := strings.TrimSpace(errOut.String()); got != want {
		t.Fatalf("stderr:\n%s\nwant:\n%s", got, want)
	}
}

// With nothing to scan (no I²C bus, no serial port) probe says so and exits
// non-zero instead of printing nothing.
func TestProbeReportsNothingFound(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"probe", "-i2c", ""}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1; stdout %s", code, out.String())
	}
	for _, want := range []string{
		"serial: none probed (give -serial /dev/ttyUSB0 to look for Modbus meters)\n",
		"probe: scanned no I²C buses and no serial ports: 0 device(s) found\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}
	if got := errOut.String(); got != "probe: no device found\n" {
		t.Errorf("stderr = %q", got)
	}
}
