package host

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// speedFlag maps a baud rate to its termios Bnnn constant.
func speedFlag(baud int) (uint32, bool) {
	switch baud {
	case 1200:
		return unix.B1200, true
	case 2400:
		return unix.B2400, true
	case 4800:
		return unix.B4800, true
	case 9600:
		return unix.B9600, true
	case 19200:
		return unix.B19200, true
	case 38400:
		return unix.B38400, true
	case 57600:
		return unix.B57600, true
	case 115200:
		return unix.B115200, true
	case 230400:
		return unix.B230400, true
	case 460800:
		return unix.B460800, true
	case 921600:
		return unix.B921600, true
	}
	return 0, false
}

// sizeFlag maps data bits to the termios CSn constant.
func sizeFlag(bits int) (uint32, bool) {
	switch bits {
	case 5:
		return unix.CS5, true
	case 6:
		return unix.CS6, true
	case 7:
		return unix.CS7, true
	case 8:
		return unix.CS8, true
	}
	return 0, false
}

// Port is a serial device in raw mode. Reads block for at most the read
// timeout (VMIN = 0, VTIME = timeout in tenths of a second).
type Port struct {
	path string

	mu    sync.Mutex
	fd    int
	vtime uint8
}

// Open opens path at baud with framing f in raw mode.
func Open(path string, baud int, f Framing) (*Port, error) {
	speed, ok := speedFlag(baud)
	if !ok {
		return nil, fmt.Errorf("serial %s: unsupported baud rate %d", path, baud)
	}
	size, ok := sizeFlag(f.DataBits)
	if !ok {
		return nil, fmt.Errorf("serial %s: unsupported data bits %d", path, f.DataBits)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("serial %s: %w", path, err)
	}
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("serial %s: not a terminal device: %w", path, err)
	}
	// Raw mode (as cfmakeraw): no line editing, no echo, no signals, no
	// CR/LF translation, no software flow control; Modbus is binary.
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF | unix.IXANY
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.PARODD | unix.CSTOPB | unix.CRTSCTS | unix.CBAUD
	t.Cflag |= size | unix.CREAD | unix.CLOCAL | speed
	switch f.Parity {
	case 'E':
		t.Cflag |= unix.PARENB
	case 'O':
		t.Cflag |= unix.PARENB | unix.PARODD
	}
	if f.StopBits == 2 {
		t.Cflag |= unix.CSTOPB
	}
	t.Cc[unix.VMIN] = 0
	t.Cc[unix.VTIME] = 10 // 1 s until SetReadTimeout says otherwise
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("serial %s: set %d %s raw: %w", path, baud, f, err)
	}
	p := &Port{path: path, fd: fd, vtime: 10}
	if err := p.Flush(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return p, nil
}

func (p *Port) String() string { return p.path }

// Read returns the bytes available, waiting up to the read timeout for the
// first; after the timeout it returns 0 and os.ErrDeadlineExceeded.
func (p *Port) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	fd, err := p.getFD()
	if err != nil {
		return 0, err
	}
	for {
		n, err := unix.Read(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("serial %s: read: %w", p.path, err)
		}
		if n == 0 {
			return 0, os.ErrDeadlineExceeded
		}
		return n, nil
	}
}

// Write writes all of b and waits until it has been transmitted (tcdrain),
// so a half-duplex RS-485 adapter can turn the line around right after.
func (p *Port) Write(b []byte) (int, error) {
	fd, err := p.getFD()
	if err != nil {
		return 0, err
	}
	done := 0
	for done < len(b) {
		n, err := unix.Write(fd, b[done:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return done, fmt.Errorf("serial %s: write: %w", p.path, err)
		}
		done += n
	}
	// TCSBRK with a non-zero argument is tcdrain.
	if err := unix.IoctlSetInt(fd, unix.TCSBRK, 1); err != nil {
		return done, fmt.Errorf("serial %s: drain: %w", p.path, err)
	}
	return done, nil
}

// SetReadTimeout sets VTIME, rounding d up to tenths of a second and
// clamping it to 0.1..25.5 s (the range termios can express).
func (p *Port) SetReadTimeout(d time.Duration) error {
	v := (d + 100*time.Millisecond - 1) / (100 * time.Millisecond)
	vtime := uint8(min(max(v, 1), 255))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd < 0 {
		return fmt.Errorf("serial %s: %w", p.path, os.ErrClosed)
	}
	if vtime == p.vtime {
		return nil
	}
	t, err := unix.IoctlGetTermios(p.fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("serial %s: get termios: %w", p.path, err)
	}
	t.Cc[unix.VMIN] = 0
	t.Cc[unix.VTIME] = vtime
	if err := unix.IoctlSetTermios(p.fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("serial %s: set read timeout: %w", p.path, err)
	}
	p.vtime = vtime
	return nil
}

// Flush discards input received but not read (TCFLSH, TCIFLUSH).
func (p *Port) Flush() error {
	fd, err := p.getFD()
	if err != nil {
		return err
	}
	if err := unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH); err != nil {
		return fmt.Errorf("serial %s: flush: %w", p.path, err)
	}
	return nil
}

// Close closes the device.
func (p *Port) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd < 0 {
		return nil
	}
	err := unix.Close(p.fd)
	p.fd = -1
	if err != nil {
		return fmt.Errorf("serial %s: close: %w", p.path, err)
	}
	return nil
}

func (p *Port) getFD() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd < 0 {
		return -1, fmt.Errorf("serial %s: %w", p.path, os.ErrClosed)
	}
	return p.fd, nil
}
