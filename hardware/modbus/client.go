package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Port is the byte stream the client talks over. sensor.SerialPort satisfies
// it; so does hardware/serialtest.Playback in tests. A port that also
// implements sync.Locker (hardware/host's shared ports do) is locked for
// each exchange, so clients of different meters on one line never
// interleave their frames.
type Port interface {
	io.ReadWriter
	// SetReadTimeout bounds each Read; a Read that times out returns 0 bytes
	// with a nil error or os.ErrDeadlineExceeded.
	SetReadTimeout(d time.Duration) error
	// Flush discards unread input.
	Flush() error
}

// Defaults chosen for slow single-phase meters on a short RS-485 or TTL
// link: the PZEM-004T and SDM120 answer within ~100 ms; a second covers a
// busy meter without stalling an agent that polls every few seconds.
const (
	DefaultBaud            = 9600
	DefaultResponseTimeout = time.Second
	DefaultAttempts        = 3
)

// Limits of one read request (application protocol specification 6.3/6.4).
const maxReadRegisters = 125

type config struct {
	baud            int
	responseTimeout time.Duration
	attempts        int
	logger          *slog.Logger
	wildcard        int // slave address answered from any address; -1: none
}

// Option configures a Client.
type Option func(*config)

// WithBaud sets the line speed, from which the 3.5-character silent interval
// between frames is derived. It does not configure the port itself.
func WithBaud(baud int) Option { return func(c *config) { c.baud = baud } }

// WithResponseTimeout bounds the wait for a complete response to one request.
func WithResponseTimeout(d time.Duration) Option {
	return func(c *config) { c.responseTimeout = d }
}

// WithAttempts bounds how often one request is sent when the exchange fails
// in transit (timeout, CRC, short or foreign frame). Values below 1 mean 1.
func WithAttempts(n int) Option { return func(c *config) { c.attempts = max(n, 1) } }

// WithWildcardAddress declares addr a vendor "general" address: every
// slave answers it, with its own address in the response (the PZEM-004T's
// 0xF8), so responses to requests sent to addr may carry any slave address.
func WithWildcardAddress(addr byte) Option { return func(c *config) { c.wildcard = int(addr) } }

// WithLogger receives one debug line per failed attempt.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Client is a Modbus-RTU master on one serial line. Its methods are safe for
// concurrent use; exchanges on the line are serialised.
type Client struct {
	port   Port
	cfg    config
	silent time.Duration

	mu       sync.Mutex
	lastByte time.Time // last byte sent or received on the line

	retries atomic.Uint64
}

// NewClient returns a client speaking over port.
func NewClient(port Port, opts ...Option) *Client {
	cfg := config{baud: DefaultBaud, responseTimeout: DefaultResponseTimeout, attempts: DefaultAttempts, wildcard: -1}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	return &Client{port: port, cfg: cfg, silent: SilentInterval(cfg.baud)}
}

// SilentInterval is the 3.5-character gap that ends a frame at baud. The
// serial line specification (2.5.1.1) counts 11 bits per character and fixes
// the gap at 1.75 ms above 19200 baud, where timer resolution would make the
// computed value meaningless.
func SilentInterval(baud int) time.Duration {
	if baud <= 0 || baud > 19200 {
		return 1750 * time.Microsecond
	}
	// 3.5 chars × 11 bits / baud seconds, e.g. 9600 baud: 38.5/9600 s ≈ 4.01 ms.
	return time.Duration(3.5 * 11 * float64(time.Second) / float64(baud))
}

// Retries counts attempts that failed in transit and were sent again.
func (c *Client) Retries() uint64 { return c.retries.Load() }

// ReadInputRegisters reads count (1..125) input registers (function 0x04)
// starting at start.
func (c *Client) ReadInputRegisters(ctx context.Context, slave byte, start, count uint16) ([]uint16, error) {
	return c.readRegisters(ctx, slave, FuncReadInputRegisters, "read input registers", start, count)
}

// ReadHoldingRegisters reads count (1..125) holding registers (function 0x03)
// starting at start.
func (c *Client) ReadHoldingRegisters(ctx context.Context, slave byte, start, count uint16) ([]uint16, error) {
	return c.readRegisters(ctx, slave, FuncReadHoldingRegisters, "read holding registers", start, count)
}

func (c *Client) readRegisters(ctx context.Context, slave, function byte, what string, start, count uint16) ([]uint16, error) {
	if count == 0 || count > maxReadRegisters {
		return nil, fmt.Errorf("modbus: slave %d %s 0x%04x: count %d outside 1..%d", slave, what, start, count, maxReadRegisters)
	}
	req := binary.BigEndian.AppendUint16(nil, start)
	req = binary.BigEndian.AppendUint16(req, count)
	data, err := c.Call(ctx, slave, function, req, 1+2*int(count))
	if err != nil {
		return nil, fmt.Errorf("modbus: slave %d %s 0x%04x+%d: %w", slave, what, start, count, err)
	}
	if int(data[0]) != 2*int(count) {
		return nil, fmt.Errorf("modbus: slave %d %s 0x%04x+%d: %w: byte count %d, want %d", slave, what, start, count, ErrUnexpectedResponse, data[0], 2*count)
	}
	regs := make([]uint16, count)
	for i := range regs {
		regs[i] = binary.BigEndian.Uint16(data[1+2*i:])
	}
	return regs, nil
}

// WriteSingleRegister writes value to holding register reg (function 0x06)
// and checks the slave's echo.
func (c *Client) WriteSingleRegister(ctx context.Context, slave byte, reg, value uint16) error {
	req := binary.BigEndian.AppendUint16(nil, reg)
	req = binary.BigEndian.AppendUint16(req, value)
	data, err := c.Call(ctx, slave, FuncWriteSingleRegister, req, len(req))
	if err != nil {
		return fmt.Errorf("modbus: slave %d write register 0x%04x=0x%04x: %w", slave, reg, value, err)
	}
	if string(data) != string(req) {
		return fmt.Errorf("modbus: slave %d write register 0x%04x=0x%04x: %w: echo % x", slave, reg, value, ErrUnexpectedResponse, data)
	}
	return nil
}

// Call sends one request and returns the data of the slave's response, which
// must be exactly respDataLen bytes (the caller knows the length from the
// function, as RTU has no length field). Vendor-specific functions (the
// PZEM-004T's 0x42 energy reset) go through Call directly.
//
// Failures in transit are retried up to the configured attempts; an
// exception response or a done ctx ends the call at once.
func (c *Client) Call(ctx context.Context, slave, function byte, data []byte, respDataLen int) ([]byte, error) {
	req, err := Encode(Frame{Slave: slave, Function: function, Data: data})
	if err != nil {
		return nil, err
	}
	if respDataLen < 0 || respDataLen > maxDataLen {
		return nil, fmt.Errorf("modbus: response of %d data bytes cannot fit a frame", respDataLen)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.port.(sync.Locker); ok {
		// Several clients share one RS-485 line (one per meter driver):
		// the port's lock keeps their exchanges whole.
		l.Lock()
		defer l.Unlock()
	}
	var lastErr error
	for attempt := 1; attempt <= c.cfg.attempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		resp, err := c.exchange(ctx, req, slave, function, respDataLen)
		if err == nil {
			return resp, nil
		}
		var exc *ExceptionError
		if errors.As(err, &exc) || ctx.Err() != nil {
			return nil, err
		}
		lastErr = err
		if attempt < c.cfg.attempts {
			c.retries.Add(1)
			c.cfg.logger.Debug("modbus attempt failed", "slave", slave, "function", function, "attempt", attempt, "err", err)
		}
	}
	if c.cfg.attempts == 1 {
		return nil, lastErr
	}
	return nil, fmt.Errorf("%d attempts: %w", c.cfg.attempts, lastErr)
}

// exchange is one request/response on the line. The caller holds c.mu.
func (c *Client) exchange(ctx context.Context, req []byte, slave, function byte, respDataLen int) ([]byte, error) {
	// Silence first, then flush: a late answer to an earlier attempt that
	// is still arriving finishes during the wait and is then discarded,
	// instead of prefixing this attempt's response.
	if wait := c.silent - time.Since(c.lastByte); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	if err := c.port.Flush(); err != nil {
		return nil, fmt.Errorf("flush stale input: %w", err)
	}
	n, err := c.port.Write(req)
	c.lastByte = time.Now()
	if err != nil {
		return nil, fmt.Errorf("write request: %w", err)
	}
	if n != len(req) {
		return nil, fmt.Errorf("write request: %d of %d bytes written", n, len(req))
	}

	deadline := c.lastByte.Add(c.cfg.responseTimeout)
	want := minFrameLen + respDataLen
	buf := make([]byte, 0, max(want, 5))
	// Address and function first: they say whether this is an exception
	// frame (5 bytes) or the normal response (want bytes).
	if buf, err = c.readUntil(ctx, buf, 2, deadline); err != nil {
		return nil, err
	}
	if buf[1]&exceptionBit != 0 {
		want = 5
	}
	if buf, err = c.readUntil(ctx, buf, want, deadline); err != nil {
		return nil, err
	}

	f, err := Decode(buf)
	fromSlave := func(addr byte) bool { return addr == slave || int(slave) == c.cfg.wildcard }
	var exc *ExceptionError
	switch {
	case errors.As(err, &exc):
		if !fromSlave(exc.Slave) || exc.Function != function {
			return nil, fmt.Errorf("%w: exception from slave %d function 0x%02x", ErrUnexpectedResponse, exc.Slave, exc.Function)
		}
		return nil, exc
	case err != nil:
		return nil, err
	case !fromSlave(f.Slave) || f.Function != function:
		return nil, fmt.Errorf("%w: slave %d function 0x%02x answered", ErrUnexpectedResponse, f.Slave, f.Function)
	}
	return f.Data, nil
}

// readUntil reads until buf holds n bytes, never more, so bytes of a later
// frame stay in the port for the next flush.
func (c *Client) readUntil(ctx context.Context, buf []byte, n int, deadline time.Time) ([]byte, error) {
	for len(buf) < n {
		if err := ctx.Err(); err != nil {
			return buf, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return buf, fmt.Errorf("%w: %d of %d bytes", ErrTimeout, len(buf), n)
		}
		if err := c.port.SetReadTimeout(left); err != nil {
			return buf, fmt.Errorf("set read timeout: %w", err)
		}
		got, err := c.port.Read(buf[len(buf):n])
		buf = buf[:len(buf)+got]
		if got > 0 {
			c.lastByte = time.Now()
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return buf, fmt.Errorf("read response: %w", err)
		}
		if got == 0 {
			// The port waited the whole timeout for a single byte.
			if len(buf) == 0 {
				return buf, fmt.Errorf("%w: no answer", ErrTimeout)
			}
			return buf, fmt.Errorf("%w: %w: %d of %d bytes", ErrTimeout, ErrShortFrame, len(buf), n)
		}
	}
	return buf, nil
}
