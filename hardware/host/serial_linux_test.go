package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gridedge/gridedge/hardware/modbus"
	"github.com/gridedge/gridedge/shared/poll"
)

// openPTY returns the master side of a pseudo-terminal and the path of its
// slave, which behaves like a serial device for termios.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	unlock := 0
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, master.Fd(), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		t.Skipf("unlockpt: %v", errno)
	}
	n, err := unix.IoctlGetUint32(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	// The master must not echo or translate what the port writes.
	if tio, err := unix.IoctlGetTermios(int(master.Fd()), unix.TCGETS); err == nil {
		tio.Lflag &^= unix.ECHO | unix.ICANON
		tio.Oflag &^= unix.OPOST
		_ = unix.IoctlSetTermios(int(master.Fd()), unix.TCSETS, tio)
	}
	return master, fmt.Sprintf("/dev/pts/%d", n)
}

func TestPortOverPTY(t *testing.T) {
	master, path := openPTY(t)
	p, err := Open(path, 9600, Framing{DataBits: 8, Parity: 'E', StopBits: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	// Binary bytes pass untranslated (CR, LF, XON/XOFF, 0xFF).
	out := []byte{0x0D, 0x0A, 0x11, 0x13, 0xFF, 0x00}
	if n, err := p.Write(out); err != nil || n != len(out) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	got := make([]byte, len(out))
	if _, err := readFull(master, got); err != nil || string(got) != string(out) {
		t.Fatalf("master read % x, %v; want % x", got, err, out)
	}

	// Stale input is discarded by Flush.
	if _, err := master.Write([]byte("stale")); err != nil {
		t.Fatal(err)
	}
	waitInput(t, p)
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := p.SetReadTimeout(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := p.Read(buf); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("after Flush: Read = %d (% x), %v; want 0 and a timeout", n, buf[:n], err)
	}

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Read(buf); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	if _, err := Open(path, 12345, Framing{DataBits: 8, Parity: 'N', StopBits: 1}); err == nil {
		t.Error("baud 12345 accepted")
	}
	if _, err := Open("/dev/null", 9600, Framing{DataBits: 8, Parity: 'N', StopBits: 1}); err == nil {
		t.Error("/dev/null accepted as a serial port")
	}
}

// TestModbusOverPTY runs a real Modbus exchange through termios: a fake
// slave on the master side answers a read of one input register.
func TestModbusOverPTY(t *testing.T) {
	master, path := openPTY(t)
	h := New(nil)
	port, err := h.OpenSerial(path, 9600)
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	req := []byte{0x01, 0x04, 0x00, 0x00, 0x00, 0x01, 0x31, 0xCA}
	resp, _ := modbus.Encode(modbus.Frame{Slave: 1, Function: 0x04, Data: []byte{0x02, 0x08, 0xFD}})
	slaveErr := make(chan error, 1)
	go func() {
		got := make([]byte, len(req))
		if _, err := readFull(master, got); err != nil {
			slaveErr <- err
			return
		}
		if string(got) != string(req) {
			slaveErr <- fmt.Errorf("slave got % x, want % x", got, req)
			return
		}
		_, err := master.Write(resp)
		slaveErr <- err
	}()
	c := modbus.NewClient(port, modbus.WithResponseTimeout(10*time.Second), modbus.WithAttempts(1))
	regs, err := c.ReadInputRegisters(context.Background(), 1, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if regs[0] != 0x08FD {
		t.Errorf("register = %#04x, want 0x08fd", regs[0])
	}
	if err := <-slaveErr; err != nil {
		t.Error(err)
	}
}

func readFull(f *os.File, b []byte) (int, error) {
	// Best effort: a pty master opened with os.OpenFile is normally
	// pollable, so a broken test fails after 20 s instead of hanging.
	_ = f.SetReadDeadline(time.Now().Add(20 * time.Second))
	n := 0
	for n < len(b) {
		m, err := f.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// waitInput polls until the port has input queued (TIOCINQ / FIONREAD).
func waitInput(t *testing.T, p *Port) {
	t.Helper()
	poll.For(t, 20*time.Second, "input queued on the port", func() (int, error) { return unix.IoctlGetInt(p.fd, unix.TIOCINQ) },
		func(n int) bool { return n > 0 })
}
