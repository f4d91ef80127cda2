package sdnotify_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gridedge/gridedge/edge/sdnotify"
)

// listen opens the datagram socket systemd would, at name (a path or an
// '@' abstract name), and points NOTIFY_SOCKET at it.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", name, err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return conn
}

func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("read notification: %v", err)
	}
	return string(buf[:n])
}

func TestMessagesOnPathSocket(t *testing.T) {
	conn := listen(t, filepath.Join(t.TempDir(), "notify"))
	n := sdnotify.New()
	if !n.Enabled() {
		t.Fatal("not enabled with NOTIFY_SOCKET set")
	}
	steps := []struct {
		send func() error
		want string
	}{
		{n.Ready, "READY=1"},
		{n.Watchdog, "WATCHDOG=1"},
		{func() error { return n.Status("buffer 12 readings") }, "STATUS=buffer 12 readings"},
		{n.Stopping, "STOPPING=1"},
	}
	for _, s := range steps {
		if err := s.send(); err != nil {
			t.Fatalf("send %s: %v", s.want, err)
		}
		if got := receive(t, conn); got != s.want {
			t.Errorf("received %q, want %q", got, s.want)
		}
	}
}

func TestAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@gridedge-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	conn := listen(t, name)
	if err := sdnotify.New().Ready(); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, conn); got != "READY=1" {
		t.Errorf("received %q", got)
	}
}

func TestNoSystemdIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	n := sdnotify.New()
	if n.Enabled() {
		t.Error("enabled without NOTIFY_SOCKET")
	}
	for _, f := range []func() error{n.Ready, n.Watchdog, n.Stopping} {
		if err := f(); err != nil {
			t.Errorf("no-op returned %v", err)
		}
	}
	if _, ok := n.WatchdogInterval(); ok {
		t.Error("watchdog enabled without WATCHDOG_USEC")
	}
	var zero sdnotify.Notifier
	if err := zero.Ready(); err != nil {
		t.Errorf("zero Notifier: %v", err)
	}
}

func TestSocketGoneIsAnError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "missing"))
	if err := sdnotify.New().Ready(); err == nil {
		t.Error("Ready to a missing socket returned nil")
	}
}

func TestWatchdogInterval(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	cases := []struct {
		usec, pid string
		want      time.Duration
	}{
		{"30000000", "", 30 * time.Second},
		{"30000000", self, 30 * time.Second},
		{"30000000", "1", 0}, // meant for another process
		{"0", "", 0},
		{"-5", "", 0},
		{"abc", "", 0},
		{"", "", 0},
	}
	for _, c := range cases {
		t.Setenv("WATCHDOG_USEC", c.usec)
		t.Setenv("WATCHDOG_PID", c.pid)
		got, ok := sdnotify.New().WatchdogInterval()
		if got != c.want || ok != (c.want > 0) {
			t.Errorf("USEC=%q PID=%q: got %v %v, want %v", c.usec, c.pid, got, ok, c.want)
		}
	}
}

func TestRunWatchdogWithholdsWhenUnhealthy(t *testing.T) {
	conn := listen(t, filepath.Join(t.TempDir(), "notify"))
	t.Setenv("WATCHDOG_USEC", "200000") // keep-alive every 100 ms
	t.Setenv("WATCHDOG_PID", "")
	n := sdnotify.New()

	healthy := make(chan error, 1)
	healthy <- nil
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- n.RunWatchdog(ctx, func() error {
			select {
			case err := <-healthy:
				return err
			default:
				return errors.New("sampler stuck")
			}
		})
	}()
	if got := receive(t, conn); got != "WATCHDOG=1" {
		t.Errorf("first message %q, want WATCHDOG=1", got)
	}
	if got := receive(t, conn); got != "STATUS=unhealthy: sampler stuck" {
		t.Errorf("second message %q, want the unhealthy status", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunWatchdog = %v", err)
	}
}
