package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// sendTimeout bounds one notification send.
const sendTimeout = 5 * time.Second

// Notifier sends state changes to systemd. The zero value is a no-op
// notifier; New reads the environment systemd sets up.
type Notifier struct {
	socket   string        // NOTIFY_SOCKET; empty when not under systemd
	watchdog time.Duration // from WATCHDOG_USEC, 0 when disabled
}

// New returns a Notifier for the environment of this process: NOTIFY_SOCKET
// for the socket, WATCHDOG_USEC and WATCHDOG_PID for the watchdog (which is
// only for this process when WATCHDOG_PID is unset or equals its pid).
// Malformed watchdog variables disable the watchdog rather than fail.
func New() *Notifier {
	n := &Notifier{socket: os.Getenv("NOTIFY_SOCKET")}
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return n
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return n
	}
	n.watchdog = time.Duration(usec) * time.Microsecond
	return n
}

// Enabled reports whether the process runs under systemd with a
// notification socket.
func (n *Notifier) Enabled() bool { return n.socket != "" }

// Notify sends one raw state message such as "READY=1" or a few of them
// separated by newlines. It returns nil without sending when not under
// systemd.
func (n *Notifier) Notify(state string) error {
	if n.socket == "" {
		return nil
	}
	// Go maps a leading '@' to the abstract namespace on Linux, which is
	// exactly what systemd means by it.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: dial %s: %w", n.socket, err)
	}
	defer conn.Close()
	// A datagram socket blocks when systemd's receive queue is full; a stuck
	// service manager must not stall the caller (the watchdog loop, shutdown).
	if err := conn.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sdnotify: send %q: %w", state, err)
	}
	return nil
}

// Ready tells systemd start-up has finished (Type=notify services are
// "activating" until then).
func (n *Notifier) Ready() error { return n.Notify("READY=1") }

// Stopping tells systemd the service is shutting down cleanly.
func (n *Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// Watchdog is the keep-alive: without it for WatchdogSec systemd kills
// and restarts the service.
func (n *Notifier) Watchdog() error { return n.Notify("WATCHDOG=1") }

// Status sets the one-line status shown by systemctl status.
func (n *Notifier) Status(text string) error { return n.Notify("STATUS=" + text) }

// WatchdogInterval is the WatchdogSec systemd enforces on this process and
// whether it is enabled. Send Watchdog at least every half of it.
func (n *Notifier) WatchdogInterval() (time.Duration, bool) { return n.watchdog, n.watchdog > 0 }

// RunWatchdog sends a keep-alive every half watchdog interval for as long as
// healthy returns nil, until ctx is done. When healthy reports an error the
// keep-alive is withheld (and the error noted in the status line), so a
// wedged service is restarted by systemd instead of looking alive. Without
// a watchdog it waits for ctx and returns nil.
func (n *Notifier) RunWatchdog(ctx context.Context, healthy func() error) error {
	interval, ok := n.WatchdogInterval()
	if !ok {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		if err := healthy(); err != nil {
			if serr := n.Status("unhealthy: " + err.Error()); serr != nil {
				return errors.Join(err, serr)
			}
		} else if err := n.Watchdog(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
