package serialtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// IO is one scripted exchange: what the host must write, and what the
// device sends back after it (nil: the device stays silent).
type IO struct {
	W []byte
	R []byte
}

// Playback implements sensor.SerialPort and modbus.Port from a script.
type Playback struct {
	// Ops is the script, consumed in order.
	Ops []IO
	// Stale is input already waiting before the first exchange (a late
	// answer to an earlier request); Flush must discard it.
	Stale []byte
	// Chunk, when > 0, limits how many bytes one Read returns, to exercise
	// callers that must assemble a frame from partial reads.
	Chunk int

	mu      sync.Mutex
	count   int
	input   []byte
	started bool
	flushes int
	timeout time.Duration
	closed  bool
	err     error
}

// ErrScript is wrapped by every error the playback reports.
var ErrScript = errors.New("serialtest: script violated")

func (p *Playback) fail(format string, a ...any) error {
	err := fmt.Errorf("%w: %s", ErrScript, fmt.Sprintf(format, a...))
	if p.err == nil {
		p.err = err
	}
	return err
}

func (p *Playback) start() {
	if !p.started {
		p.started = true
		p.input = append(p.input, p.Stale...)
	}
}

// Write checks b against the next scripted request and queues its response.
func (p *Playback) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start()
	if p.closed {
		return 0, p.fail("write after close")
	}
	if p.count >= len(p.Ops) {
		return 0, p.fail("unexpected write #%d % x", p.count, b)
	}
	if want := p.Ops[p.count].W; !bytes.Equal(b, want) {
		return 0, p.fail("write #%d: got % x, want % x", p.count, b, want)
	}
	p.input = append(p.input, p.Ops[p.count].R...)
	p.count++
	return len(b), nil
}

// Read returns queued response bytes; with none queued it returns 0 bytes
// and os.ErrDeadlineExceeded immediately, like an expired read timeout.
func (p *Playback) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start()
	if p.closed {
		return 0, p.fail("read after close")
	}
	if len(p.input) == 0 {
		return 0, os.ErrDeadlineExceeded
	}
	n := len(b)
	if p.Chunk > 0 {
		n = min(n, p.Chunk)
	}
	n = copy(b[:n], p.input)
	p.input = p.input[n:]
	return n, nil
}

// SetReadTimeout records d; the playback never waits.
func (p *Playback) SetReadTimeout(d time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d <= 0 {
		return p.fail("read timeout %v must be positive", d)
	}
	p.timeout = d
	return nil
}

// Flush discards queued input.
func (p *Playback) Flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start()
	p.input = nil
	p.flushes++
	return nil
}

// Close marks the port closed.
func (p *Playback) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

// Closed reports whether Close was called.
func (p *Playback) Closed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Flushes counts Flush calls.
func (p *Playback) Flushes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flushes
}

// Done returns the first script violation, or an error if scripted
// exchanges were left unused.
func (p *Playback) Done() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	if p.count != len(p.Ops) {
		return fmt.Errorf("%w: %d of %d exchanges used", ErrScript, p.count, len(p.Ops))
	}
	return nil
}
