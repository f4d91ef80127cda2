package deploy_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/poll"
)

// TestShippedCollectorConnectsToShippedMosquitto starts Debian's Mosquitto
// with deploy/mosquitto and runs the collector unit's ExecStart command
// line, with the unit's credential handed over as systemd would (%d is the
// credentials directory). Only the ports and the state directory are
// moved; the collector must authenticate and subscribe (/healthz 200). With
// a wrong password it must log the broker's refusal, with its reason, at
// ERROR and report itself unhealthy.
func TestShippedCollectorConnectsToShippedMosquitto(t *testing.T) {
	if _, err := mqtttest.Binary(); err != nil {
		t.Skip("mosquitto not installed (make deps)")
	}
	u := parseUnit(t, "systemd/gridedge-collector.service")
	cred, _ := u.last("Service", "LoadCredential")
	name, source, ok := strings.Cut(cred, ":")
	if !ok || source != "/etc/gridedge/collector-mqtt" {
		t.Fatalf("LoadCredential=%q, want <name>:/etc/gridedge/collector-mqtt (the path the docs give)", cred)
	}
	execStart, _ := u.last("Service", "ExecStart")
	if !strings.Contains(execStart, "-mqtt-credentials-file %d/"+name) {
		t.Fatalf("ExecStart %q does not read the credential %q from %%d", execStart, name)
	}
	b := mqtttest.StartShipped(t, brokerConfig(t, "mosquitto/mosquitto.conf"), mqtttest.ShippedFiles{
		Paths: shippedBrokers[0].paths, ACL: brokerACL(t, "mosquitto/mosquitto.conf"),
		Users: map[string]string{"collector": "right-password"},
	})
	bin := filepath.Join(t.TempDir(), "gridedge-collector")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/gridedge-collector").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	t.Run("right password", func(t *testing.T) {
		addr, _, _ := runUnitCommand(t, execStart, bin, b.PlainPort(), name, "right-password")
		waitHealth(t, addr, http.StatusOK)
		if !strings.Contains(b.Logs(), "u'collector'") {
			t.Fatalf("Mosquitto did not see the collector's username:\n%s", b.Logs())
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		addr, logs, _ := runUnitCommand(t, execStart, bin, b.PlainPort(), name, "wrong-password")
		poll.For(t, 30*time.Second, "the refusal logged at ERROR", func() (string, error) { return logs.String(), nil },
			func(l string) bool {
				return strings.Contains(l, `level=ERROR msg="mqtt broker refused the connection"`)
			})
		if !strings.Contains(logs.String(), "connack_code=5") {
			t.Fatalf("the broker's reason is missing:\n%s", logs.String())
		}
		if strings.Contains(logs.String(), "wrong-password") {
			t.Fatalf("the password reached the log:\n%s", logs.String())
		}
		waitHealth(t, addr, http.StatusServiceUnavailable)
	})
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runUnitCommand runs the unit's command line with bin for the executable,
// the broker port for 1883, a free HTTP port, a temporary state directory
// and credentials directory, and returns the bound HTTP address.
func runUnitCommand(t *testing.T, execStart, bin string, port int, credName, password string) (string, *lockedBuffer, *exec.Cmd) {
	t.Helper()
	dir := t.TempDir()
	credDir := filepath.Join(dir, "credentials")
	must(t, os.MkdirAll(credDir, 0o700))
	must(t, os.WriteFile(filepath.Join(credDir, credName),
		[]byte("GRIDEDGE_MQTT_USERNAME=collector\nGRIDEDGE_MQTT_PASSWORD="+password+"\n"), 0o600))
	r := strings.NewReplacer("%d", credDir, "127.0.0.1:1883", "127.0.0.1:"+strconv.Itoa(port),
		"127.0.0.1:8080", "127.0.0.1:0", "/var/lib/gridedge-collector", filepath.Join(dir, "state"))
	args := strings.Fields(r.Replace(execStart))
	if args[0] != "/usr/bin/gridedge-collector" {
		t.Fatalf("ExecStart runs %q", args[0])
	}
	addrFile := filepath.Join(dir, "http.addr")
	cmd := exec.Command(bin, append(args[1:], "-http-addr-file", addrFile)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"} // nothing from the test's environment
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	must(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("collector's output:\n%s", logs.String())
		}
	})
	addr := poll.For(t, 60*time.Second, "the collector's address file", func() (string, error) {
		raw, err := os.ReadFile(addrFile)
		return string(bytes.TrimSpace(raw)), err
	}, func(a string) bool { return a != "" })
	return addr, logs, cmd
}

func waitHealth(t *testing.T, addr string, want int) {
	t.Helper()
	poll.For(t, 30*time.Second, fmt.Sprintf("/healthz to answer %d", want), func() (int, error) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}, func(code int) bool { return code == want })
}
