package soak

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridedge/gridedge/edge/buffer"
)

var (
	soakDays        = flag.Int("soak.days", 1, "simulated days of 8 channels at 1 Hz the soak appends (7 = the full week)")
	soakGC          = flag.Duration("soak.gc", time.Second, "real time between the buffer's value-log GC and quota checks (shipped: 1m of real time)")
	soakHeapProfile = flag.String("soak.heapprofile", "", "write a heap profile here once the final drain emptied the buffer (buffer still open)")
	soakBadger      = flag.Bool("soak.badger", false, "use Badger even on 32-bit platforms, where its table allocator corrupts tables and readings are lost (reproduces the loss; docs/soak.md)")
)

// logCounter keeps what the buffer and Badger log (warnings and errors).
type logCounter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	errors int
}

func (l *logCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if bytes.Contains(p, []byte("level=ERROR")) {
		l.errors++
	}
	return l.buf.Write(p)
}

func TestSoak(t *testing.T) {
	days := *soakDays
	if days < 1 {
		t.Fatalf("-soak.days must be at least 1, got %d", days)
	}
	if runtime.GOOS != "linux" {
		t.Skip("the soak measures the process through /proc (Linux)")
	}
	logs := &logCounter{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := DefaultConfig()
	cfg.Length = time.Duration(days) * 24 * time.Hour
	cfg.Outages = WeekOutages(days)
	cfg.BufferOptions = ShippedBufferOptions(log, *soakGC)
	backend, err := buffer.Resolve(buffer.BackendAuto)
	if err != nil {
		t.Fatal(err)
	}
	if *soakBadger {
		// On 32-bit this reproduces the loss: ristretto's z.Allocator
		// (tableAllocatorOverlaps) makes Badger write corrupt tables.
		backend = buffer.BackendBadger
		cfg.BufferOptions = append(cfg.BufferOptions, buffer.WithBackend(backend), buffer.WithBadgerDespiteDataLoss())
	}
	t.Logf("%d-bit platform, buffer backend %s (table allocator reuses memory: %v)", addressBits, backend, tableAllocatorOverlaps())
	cfg.Logger = log
	cfg.Progress = func(s Sample) {
		if *soakHeapProfile != "" && s.Held == 0 && s.Sim >= cfg.Length {
			writeHeapProfile(t, *soakHeapProfile)
		}
		if testing.Verbose() {
			t.Logf("%s held %d disk %.1f MB mapped %.1f MB (dir %.1f) fds %d rss %.1f MB",
				simLabel(s.Sim), s.Held, mb(s.DiskBytes), mb(s.MappedBytes), mb(s.MappedInDir), s.OpenFiles, mb(s.RSS))
		}
	}
	root := t.TempDir()
	rep, err := Run(context.Background(), filepath.Join(root, "buffer"), filepath.Join(root, "state"), cfg)
	var table strings.Builder
	_ = rep.WriteTable(&table)
	t.Logf("soak of %d simulated day(s), 8 channels at 1 Hz, outages %v:\n%s", days, cfg.Outages, table.String())
	if err != nil {
		t.Fatal(err)
	}
	if logs.errors > 0 {
		t.Errorf("the buffer logged %d errors:\n%s", logs.errors, logs.buf.String())
	}

	want := uint64(days) * 24 * 3600 * 8
	if rep.Appended != want || rep.Read != want || rep.Acked != want {
		t.Errorf("appended %d, read %d, acked %d; want %d each", rep.Appended, rep.Read, rep.Acked, want)
	}
	// The longest outage decides the largest backlog: every reading of it
	// plus at most the step in flight when it began.
	longest := time.Duration(0)
	for _, o := range cfg.Outages {
		longest = max(longest, o.Duration)
	}
	if minHeld := int64(longest/time.Second) * 8; rep.Peak.Held < minHeld {
		t.Errorf("peak backlog %d readings, want at least the %v outage's %d (did the outage happen?)", rep.Peak.Held, longest, minHeld)
	}
	checkBounds(t, rep)
}

// checkBounds asserts the resource bounds derived in docs/soak.md.
func checkBounds(t *testing.T, rep Report) {
	t.Helper()
	if rep.Peak.ProcessErr != "" {
		t.Fatalf("cannot measure the process: %s", rep.Peak.ProcessErr)
	}
	limit := diskBound(rep.PeakBacklogBytes)
	for _, s := range rep.Samples {
		if s.DiskBytes > limit || s.FileBytes > limit {
			t.Errorf("%s: buffer uses %.1f MB on disk (files %.1f MB), bound %.1f MB (%d readings held)",
				simLabel(s.Sim), mb(s.DiskBytes), mb(s.FileBytes), mb(limit), s.Held)
		}
		if s.MappedInDir > limit {
			t.Errorf("%s: %.1f MB mapped from the buffer directory, bound %.1f MB", simLabel(s.Sim), mb(s.MappedInDir), mb(limit))
		}
		// On 64-bit the Go runtime reserves gigabytes of address space it
		// never uses; the total only matters where address space is scarce.
		if addressBits == 32 && s.MappedBytes > mappedBound32 {
			t.Errorf("%s: %.1f MB mapped in total, bound %.1f MB", simLabel(s.Sim), mb(s.MappedBytes), mb(mappedBound32))
		}
		if s.OpenFiles > openFilesBound {
			t.Errorf("%s: %d open files, bound %d", simLabel(s.Sim), s.OpenFiles, openFilesBound)
		}
	}
	if limit := int64(emptyDiskBound); rep.AfterReopen.DiskBytes > limit {
		t.Errorf("emptied and reopened buffer uses %.1f MB on disk, bound %.1f MB", mb(rep.AfterReopen.DiskBytes), mb(limit))
	}
}

func writeHeapProfile(t *testing.T, path string) {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		t.Errorf("heap profile: %v", err)
		return
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		t.Errorf("heap profile: %v", err)
	}
}
