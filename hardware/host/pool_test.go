package host

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestParsePortName(t *testing.T) {
	for _, tc := range []struct {
		in, path, framing string
	}{
		{"/dev/ttyUSB0", "/dev/ttyUSB0", "8N1"},
		{"/dev/ttyUSB0:8E1", "/dev/ttyUSB0", "8E1"},
		{"/dev/ttyAMA0:8n2", "/dev/ttyAMA0", "8N2"},
		{"/dev/ttyS0:7O1", "/dev/ttyS0", "7O1"},
	} {
		path, f, err := ParsePortName(tc.in)
		if err != nil || path != tc.path || f.String() != tc.framing {
			t.Errorf("ParsePortName(%q) = %q, %v, %v; want %q %s", tc.in, path, f, err, tc.path, tc.framing)
		}
	}
	for _, bad := range []string{"", ":8N1", "/dev/ttyS0:8X1", "/dev/ttyS0:9N1", "/dev/ttyS0:8N3", "/dev/ttyS0:8N"} {
		if _, _, err := ParsePortName(bad); err == nil {
			t.Errorf("ParsePortName(%q) accepted", bad)
		}
	}
}

type fakeRaw struct{ closed int }

func (f *fakeRaw) Read([]byte) (int, error)           { return 0, os.ErrDeadlineExceeded }
func (f *fakeRaw) Write(b []byte) (int, error)        { return len(b), nil }
func (f *fakeRaw) SetReadTimeout(time.Duration) error { return nil }
func (f *fakeRaw) Flush() error                       { return nil }
func (f *fakeRaw) Close() error                       { f.closed++; return nil }

func TestSharedPort(t *testing.T) {
	var opened []*fakeRaw
	pool := newSerialPool()
	pool.openRaw = func(path string, baud int, f Framing) (rawPort, error) {
		r := &fakeRaw{}
		opened = append(opened, r)
		return r, nil
	}
	a, err := pool.open("/dev/ttyUSB0", 9600)
	if err != nil {
		t.Fatal(err)
	}
	b, err := pool.open("/dev/ttyUSB0:8N1", 9600)
	if err != nil {
		t.Fatal(err)
	}
	if len(opened) != 1 {
		t.Fatalf("device opened %d times, want once", len(opened))
	}
	if _, err := pool.open("/dev/ttyUSB0", 2400); err == nil {
		t.Error("sharing at another baud rate accepted")
	}
	if _, err := pool.open("/dev/ttyUSB0:8E1", 9600); err == nil {
		t.Error("sharing with other framing accepted")
	}

	// The line lock is shared: while a holds it, b cannot take it.
	a.Lock()
	if b.sp.line.TryLock() {
		t.Fatal("second reference took the line while the first held it")
	}
	a.Unlock()
	if !b.sp.line.TryLock() {
		t.Fatal("line still locked after Unlock")
	}
	b.Unlock()

	if err := a.Close(); err != nil || opened[0].closed != 0 {
		t.Fatalf("first Close: %v, device closed %d times", err, opened[0].closed)
	}
	if _, err := a.Write([]byte{1}); !errors.Is(err, os.ErrClosed) {
		t.Errorf("write on closed reference: %v", err)
	}
	if err := b.Close(); err != nil || opened[0].closed != 1 {
		t.Fatalf("last Close: %v, device closed %d times", err, opened[0].closed)
	}
	if err := b.Close(); err != nil || opened[0].closed != 1 {
		t.Errorf("double Close: %v, device closed %d times", err, opened[0].closed)
	}
	if _, err := pool.open("/dev/ttyUSB0", 2400); err != nil || len(opened) != 2 {
		t.Errorf("reopen after last close at another baud: %v", err)
	}
}

func TestEnv(t *testing.T) {
	h := New(nil)
	if err := h.Init(); err != nil {
		t.Fatal(err)
	}
	env := h.Env(t.TempDir(), nil)
	if env.OpenI2C == nil || env.OpenSPI == nil || env.OpenSerial == nil || env.OpenGPIO == nil || env.Now == nil || env.Logger == nil {
		t.Fatalf("Env has nil members: %+v", env)
	}
	if _, err := env.OpenGPIO("NO_SUCH_PIN"); err == nil {
		t.Error("unknown pin opened")
	}
	if _, err := env.OpenI2C("no-such-bus"); err == nil {
		t.Error("unknown I2C bus opened")
	}
	if _, err := env.OpenSerial("/nonexistent/tty", 9600); err == nil {
		t.Error("missing serial device opened")
	}
}
