package modbus

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"
)

// loopPort answers every request with the same response, without I/O, so
// the benchmark measures the client's own cost per exchange.
type loopPort struct {
	resp    []byte
	pending []byte
	locks   int
	mu      sync.Mutex
}

func (p *loopPort) Write(b []byte) (int, error) {
	p.pending = append(p.pending[:0], p.resp...)
	return len(b), nil
}
func (p *loopPort) Read(b []byte) (int, error) {
	if len(p.pending) == 0 {
		return 0, os.ErrDeadlineExceeded
	}
	n := copy(b, p.pending)
	p.pending = p.pending[n:]
	return n, nil
}
func (p *loopPort) SetReadTimeout(time.Duration) error { return nil }
func (p *loopPort) Flush() error                       { p.pending = p.pending[:0]; return nil }
func (p *loopPort) Lock()                              { p.mu.Lock(); p.locks++ }
func (p *loopPort) Unlock()                            { p.mu.Unlock() }

func TestSharedPortIsLockedPerExchange(t *testing.T) {
	p := &loopPort{resp: rtu(0x01, 0x04, 0x02, 0x00, 0x2A)}
	c := NewClient(p, WithBaud(115200))
	for range 3 {
		if _, err := c.ReadInputRegisters(context.Background(), 1, 0, 1); err != nil {
			t.Fatal(err)
		}
	}
	if p.locks != 3 {
		t.Errorf("port locked %d times for 3 exchanges", p.locks)
	}
}

func BenchmarkCRC16(b *testing.B) {
	frame := make([]byte, 254)
	for i := range frame {
		frame[i] = byte(i)
	}
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		CRC16(frame)
	}
}

func BenchmarkDecode(b *testing.B) {
	frame := rtu(0x01, 0x04, 0x14, 0x08, 0xFD, 0x04, 0xD2, 0x00, 0x00, 0x0B, 0x17, 0x00, 0x00, 0x11, 0x70, 0x00, 0x01, 0x01, 0xF4, 0x00, 0x64, 0x00, 0x00)
	for b.Loop() {
		if _, err := Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadInputRegisters is one PZEM-sized exchange (10 registers)
// without the line: at 115200 baud the silent interval (1.75 ms) dominates,
// which the frames/s metric shows.
func BenchmarkReadInputRegisters(b *testing.B) {
	p := &loopPort{resp: rtu(0x01, 0x04, 0x14, 0x08, 0xFD, 0x04, 0xD2, 0x00, 0x00, 0x0B, 0x17, 0x00, 0x00, 0x11, 0x70, 0x00, 0x01, 0x01, 0xF4, 0x00, 0x64, 0x00, 0x00)}
	c := NewClient(p, WithBaud(115200))
	ctx := context.Background()
	start := time.Now()
	for b.Loop() {
		if _, err := c.ReadInputRegisters(ctx, 1, 0, 10); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "exchanges/s")
}
