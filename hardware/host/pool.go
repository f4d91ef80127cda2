package host

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Framing is the character format of a serial line.
type Framing struct {
	DataBits int  // 5..8
	Parity   byte // 'N', 'E' or 'O'
	StopBits int  // 1 or 2
}

// String is e.g. "8N1".
func (f Framing) String() string { return fmt.Sprintf("%d%c%d", f.DataBits, f.Parity, f.StopBits) }

// ParsePortName splits "/dev/ttyUSB0:8E1" into the device path and its
// framing; without a suffix the framing is 8N1.
func ParsePortName(name string) (string, Framing, error) {
	f := Framing{DataBits: 8, Parity: 'N', StopBits: 1}
	path, suffix, found := strings.Cut(name, ":")
	if path == "" {
		return "", f, errors.New("serial port: empty device path")
	}
	if !found {
		return path, f, nil
	}
	s := strings.ToUpper(suffix)
	if len(s) != 3 || s[0] < '5' || s[0] > '8' || !strings.ContainsRune("NEO", rune(s[1])) || (s[2] != '1' && s[2] != '2') {
		return "", f, fmt.Errorf("serial port %q: framing %q is not like 8N1, 8E1, 8O1 or 8N2", name, suffix)
	}
	f = Framing{DataBits: int(s[0] - '0'), Parity: s[1], StopBits: int(s[2] - '0')}
	return path, f, nil
}

// rawPort is an open serial device (Port on Linux).
type rawPort interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	SetReadTimeout(d time.Duration) error
	Flush() error
	Close() error
}

// openFunc opens a device; tests replace it.
type openFunc func(path string, baud int, f Framing) (rawPort, error)

// serialPool shares one open device between the channels that name it.
type serialPool struct {
	openRaw openFunc
	mu      sync.Mutex
	ports   map[string]*sharedPort
}

func newSerialPool() *serialPool {
	open := func(path string, baud int, f Framing) (rawPort, error) {
		p, err := Open(path, baud, f)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	return &serialPool{openRaw: open, ports: map[string]*sharedPort{}}
}

type sharedPort struct {
	raw     rawPort
	path    string
	baud    int
	framing Framing
	refs    int
	line    sync.Mutex // held for one exchange by a Modbus client
}

func (p *serialPool) open(name string, baud int) (*PortRef, error) {
	path, framing, err := ParsePortName(name)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if sp, ok := p.ports[path]; ok {
		if sp.baud != baud || sp.framing != framing {
			return nil, fmt.Errorf("serial port %s already open at %d %s; cannot share it at %d %s", path, sp.baud, sp.framing, baud, framing)
		}
		sp.refs++
		return &PortRef{pool: p, sp: sp}, nil
	}
	raw, err := p.openRaw(path, baud, framing)
	if err != nil {
		return nil, err
	}
	sp := &sharedPort{raw: raw, path: path, baud: baud, framing: framing, refs: 1}
	p.ports[path] = sp
	return &PortRef{pool: p, sp: sp}, nil
}

func (p *serialPool) release(sp *sharedPort) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	sp.refs--
	if sp.refs > 0 {
		return nil
	}
	delete(p.ports, sp.path)
	return sp.raw.Close()
}

// PortRef is one channel's reference to a shared serial port. It
// implements sensor.SerialPort and sync.Locker (the line lock).
type PortRef struct {
	pool   *serialPool
	sp     *sharedPort
	mu     sync.Mutex
	closed bool
}

var errClosed = fmt.Errorf("serial port: %w", os.ErrClosed)

func (r *PortRef) live() (*sharedPort, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errClosed
	}
	return r.sp, nil
}

func (r *PortRef) Read(b []byte) (int, error) {
	sp, err := r.live()
	if err != nil {
		return 0, err
	}
	return sp.raw.Read(b)
}

func (r *PortRef) Write(b []byte) (int, error) {
	sp, err := r.live()
	if err != nil {
		return 0, err
	}
	return sp.raw.Write(b)
}

// SetReadTimeout implements sensor.SerialPort.
func (r *PortRef) SetReadTimeout(d time.Duration) error {
	sp, err := r.live()
	if err != nil {
		return err
	}
	return sp.raw.SetReadTimeout(d)
}

// Flush implements sensor.SerialPort.
func (r *PortRef) Flush() error {
	sp, err := r.live()
	if err != nil {
		return err
	}
	return sp.raw.Flush()
}

// Lock takes the line for one exchange.
func (r *PortRef) Lock() { r.sp.line.Lock() }

// Unlock releases the line.
func (r *PortRef) Unlock() { r.sp.line.Unlock() }

func (r *PortRef) String() string { return r.sp.path }

// Close drops this reference; the device closes with the last one.
func (r *PortRef) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	return r.pool.release(r.sp)
}
