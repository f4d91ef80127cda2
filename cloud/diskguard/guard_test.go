package diskguard

import (
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
)

func TestRefusesBelowTheReserveAndResumes(t *testing.T) {
	var free atomic.Int64
	free.Store(100 << 20)
	g := New("/data", 64<<20, WithInterval(0), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		WithFreeFunc(func(string) (int64, error) { return free.Load(), nil }))
	if err := g.Check(); err != nil || !g.CanWrite() || g.Health() != nil {
		t.Fatalf("100 MiB free, 64 MiB reserve: Check %v, CanWrite %v, Health %v", err, g.CanWrite(), g.Health())
	}
	free.Store(40 << 20)
	if err := g.Check(); !errors.Is(err, ErrLowSpace) {
		t.Fatalf("40 MiB free: Check = %v, want ErrLowSpace", err)
	}
	if !g.CanWrite() {
		t.Fatal("40 MiB free is above the 32 MiB write floor: CanWrite should hold")
	}
	if g.Health() == nil {
		t.Fatal("Health: want the reason while below the reserve")
	}
	free.Store(20 << 20)
	if g.CanWrite() {
		t.Fatal("20 MiB free is below the write floor: CanWrite = true")
	}
	free.Store(65 << 20)
	if err := g.Check(); err != nil || g.Health() != nil {
		t.Fatalf("space returned: Check %v, Health %v", err, g.Health())
	}
	s := g.Stats()
	if s.Refusals != 1 || s.LowEvents != 1 || s.Low {
		t.Fatalf("Stats = %+v, want 1 refusal, 1 low event, not low", s)
	}
}

func TestZeroReserveNeverRefusesAndNeverReads(t *testing.T) {
	g := New("/data", 0, WithFreeFunc(func(string) (int64, error) {
		t.Fatal("free space read with the guard disabled")
		return 0, nil
	}))
	if err := g.Check(); err != nil || !g.CanWrite() {
		t.Fatalf("disabled guard: Check %v CanWrite %v", err, g.CanWrite())
	}
}

func TestUnreadableFreeSpaceDoesNotRefuse(t *testing.T) {
	g := New("/data", 1<<30, WithInterval(0), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		WithFreeFunc(func(string) (int64, error) { return 0, errors.New("statfs: no such device") }))
	if err := g.Check(); err != nil {
		t.Fatalf("Check = %v; an unreadable file system must not refuse data on a guess", err)
	}
}
