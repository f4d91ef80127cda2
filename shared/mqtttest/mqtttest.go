package mqtttest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Broker is a Mosquitto process owned by one test.
type Broker struct {
	t       testing.TB
	bin     string
	dir     string
	port    int
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	logFile string
}

// Option changes the broker's configuration.
type Option func(*settings)

type settings struct {
	extraConf string
}

// WithConfig appends raw lines to the generated mosquitto.conf.
func WithConfig(lines string) Option { return func(s *settings) { s.extraConf += lines + "\n" } }

// Binary returns the path of the mosquitto executable, or an error saying how
// to install it.
func Binary() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("mosquitto not found: install it (apt-get install mosquitto) or run `make test`, which does")
}

// Start launches a broker on a free loopback port and stops it when the test
// ends. Persistence is on, written on every change, so a Kill keeps what the
// broker had acknowledged as far as Mosquitto's own guarantees go.
func Start(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	var s settings
	for _, o := range opts {
		o(&s)
	}
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatalf("mqtttest: free port: %v", err)
	}
	b := &Broker{t: t, bin: bin, dir: dir, port: port, logFile: filepath.Join(dir, "mosquitto.log")}
	conf := fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous true
persistence true
persistence_location %s/
autosave_interval 1
autosave_on_changes true
max_queued_messages 0
max_inflight_messages 0
log_dest file %s
log_type error
log_type warning
%s`, port, dir, b.logFile, s.extraConf)
	if err := os.WriteFile(filepath.Join(dir, "mosquitto.conf"), []byte(conf), 0o600); err != nil {
		t.Fatalf("mqtttest: write config: %v", err)
	}
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b
}

// URL is the broker's address for paho and the collector, tcp://127.0.0.1:PORT.
func (b *Broker) URL() string { return "tcp://127.0.0.1:" + strconv.Itoa(b.port) }

// Addr is host:port.
func (b *Broker) Addr() string { return "127.0.0.1:" + strconv.Itoa(b.port) }

func (b *Broker) start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return errors.New("mqtttest: broker already running")
	}
	cmd := exec.Command(b.bin, "-c", filepath.Join(b.dir, "mosquitto.conf"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mqtttest: start mosquitto: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.Addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			log, _ := os.ReadFile(b.logFile)
			return fmt.Errorf("mqtttest: mosquitto exited at start: %s %s", stderr.String(), log)
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return fmt.Errorf("mqtttest: mosquitto did not listen on %s within 10s: %s", b.Addr(), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.cmd, b.done = cmd, done
	return nil
}

// Kill sends SIGKILL and waits for the process to end, as a crash would.
func (b *Broker) Kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	<-b.done
	b.cmd = nil
}

// Restart starts the broker again on the same port with the same persistence
// directory. It fails the test if the broker cannot start.
func (b *Broker) Restart() {
	b.t.Helper()
	// The kernel may hold the port briefly; retry for a while.
	var err error
	for i := 0; i < 50; i++ {
		if err = b.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("mqtttest: restart: %v", err)
}

// Stop terminates the broker (SIGTERM, then SIGKILL after 5 s).
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(os.Interrupt)
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
	b.cmd = nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
