package serialtest

import (
	"errors"
	"os"
	"testing"
)

func TestPlayback(t *testing.T) {
	p := &Playback{Stale: []byte{0xEE}, Chunk: 2, Ops: []IO{{W: []byte{1, 2}, R: []byte{3, 4, 5}}}}
	buf := make([]byte, 8)
	if n, err := p.Read(buf); n != 1 || buf[0] != 0xEE || err != nil {
		t.Fatalf("stale read = %d % x %v", n, buf[:n], err)
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write([]byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	if n, _ := p.Read(buf); n != 2 {
		t.Errorf("Chunk 2: read %d bytes", n)
	}
	if n, _ := p.Read(buf); n != 1 || buf[0] != 5 {
		t.Errorf("rest: % x", buf[:n])
	}
	if n, err := p.Read(buf); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("empty read = %d, %v; want an immediate timeout", n, err)
	}
	if err := p.Done(); err != nil {
		t.Error(err)
	}
	if _, err := p.Write([]byte{9}); !errors.Is(err, ErrScript) {
		t.Errorf("unscripted write: %v", err)
	}
	if err := p.Done(); !errors.Is(err, ErrScript) {
		t.Errorf("Done after a violation: %v", err)
	}

	q := &Playback{Ops: []IO{{W: []byte{1}}}}
	if _, err := q.Write([]byte{2}); !errors.Is(err, ErrScript) {
		t.Errorf("wrong write accepted: %v", err)
	}
	if err := q.SetReadTimeout(0); !errors.Is(err, ErrScript) {
		t.Errorf("zero timeout accepted: %v", err)
	}
}
