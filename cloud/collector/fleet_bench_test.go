package collector

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/intake"
	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/shared/wire"
)

var (
	fleetDevices  = flag.Int("fleet.devices", 50_000, "BenchmarkFleet: devices")
	fleetReadings = flag.Int("fleet.readings", 2_000, "BenchmarkFleet: readings per device (4 channels at 1 Hz)")
	fleetIdle     = flag.Duration("fleet.idle", 10*time.Second, "BenchmarkFleet: idle period measured")
	fleetSettle   = flag.Duration("fleet.settle", 10*time.Second, "BenchmarkFleet: wait after the last reading is stored before the idle period (past unload_after and the idle timeouts: 8m)")
	fleetHeap     = flag.String("fleet.heap", "", "BenchmarkFleet: write a heap profile of the idle collector to this file")
	fleetUnload   = flag.Duration("fleet.unload", DefaultConfig().UnloadAfter, "BenchmarkFleet: unload_after")
)

// procStat reads this process's CPU time, bytes written to storage and
// resident memory.
func procStat(b *testing.B) (cpu time.Duration, written int64, rss int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if io, err := os.ReadFile("/proc/self/io"); err == nil {
		for _, l := range strings.Split(string(io), "\n") {
			if v, ok := strings.CutPrefix(l, "write_bytes: "); ok {
				written, _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	if st, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				rss = kb << 10
			}
		}
	}
	return cpu, written, rss
}

// BenchmarkFleet runs the collector's workers (2 partitions, the shipped
// pipelines plus windows_1m) over a fleet's readings appended straight to
// the readings log, then leaves them idle with every device's windows open.
// It reports the workers' rate, the idle CPU and bytes written per second,
// the RSS, and the store's table bytes per raw reading after compaction.
//
//	go test -run '^$' -bench Fleet -benchtime 1x -timeout 60m ./cloud/collector/ [-fleet.devices 50000 -fleet.readings 2000]
func BenchmarkFleet(b *testing.B) {
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		cfg := DefaultConfig()
		cfg.DataDir, cfg.Partitions, cfg.UnloadAfter = dir, 2, *fleetUnload
		st, err := store.Open(filepath.Join(dir, "store"))
		if err != nil {
			b.Fatal(err)
		}
		lg, err := openLog(cfg, testLogger(b))
		if err != nil {
			b.Fatal(err)
		}
		ws := newWorkers(cfg, collectorPipelines(cfg), lg, st, nil, time.Now, testLogger(b))
		if err := ws.open(); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ws.run(ctx) }()

		total := *fleetDevices * *fleetReadings
		start := time.Now().Add(-time.Duration(*fleetReadings/4+600) * time.Second)
		b.StartTimer()
		t0 := time.Now()
		// Batches of 100 readings (25 s of 4 channels), devices in turn.
		var wg sync.WaitGroup
		sem := make(chan struct{}, 4096)
		for first := 0; first < *fleetReadings; first += 100 {
			for d := range *fleetDevices {
				dev := fmt.Sprintf("fleet-%05d", d)
				bt := &wire.Batch{SchemaVersion: wire.SchemaVersion, DeviceId: dev, SeqEpoch: 1}
				for i := first; i < min(first+100, *fleetReadings); i++ {
					bt.Readings = append(bt.Readings, &wire.Reading{Seq: uint64(i + 1), Channel: []string{"mains", "sub1", "sub2", "sub3"}[i%4],
						Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: float64((d+i)%2500) / 10,
						WallNs: start.Add(time.Duration(i/4) * time.Second).UnixNano(), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED})
				}
				p, _ := wire.EncodeBatch(bt)
				rec := intake.AppendRecord(nil, intake.Record{Kind: intake.KindData, ReceivedNs: time.Now().UnixNano(), Site: "fleet", Payload: p})
				sem <- struct{}{}
				wg.Add(1)
				key := []byte(dev)
				if err := lg.Append(ctx, readlog.PartitionFor(key, 2), key, rec, func(_ int64, err error) {
					if err != nil {
						b.Error(err)
					}
					<-sem
					wg.Done()
				}); err != nil {
					b.Fatal(err)
				}
			}
		}
		wg.Wait()
		stored := func() (n uint64) {
			for _, s := range ws.stats() {
				n += s.Stored
			}
			return n
		}
		for stored() < uint64(total) {
			time.Sleep(100 * time.Millisecond)
		}
		elapsed := time.Since(t0)
		b.StopTimer()
		b.ReportMetric(float64(total)/elapsed.Seconds(), "readings/s")

		// Idle: let the last commits, flushes and provisional results settle
		// (with -fleet.settle past unload_after and the pipelines' idle
		// timeouts but the daily one, every device is unloaded), then
		// measure.
		time.Sleep(*fleetSettle)
		cpu0, w0, _ := procStat(b)
		time.Sleep(*fleetIdle)
		cpu1, w1, _ := procStat(b)
		runtime.GC()
		debug.FreeOSMemory()
		_, _, rss := procStat(b)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if *fleetHeap != "" {
			f, err := os.Create(*fleetHeap)
			if err != nil {
				b.Fatal(err)
			}
			if err := pprof.WriteHeapProfile(f); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
		b.ReportMetric(100*(cpu1-cpu0).Seconds()/fleetIdle.Seconds(), "idle-%core")
		b.ReportMetric(float64(w1-w0)/fleetIdle.Seconds(), "idle-written-B/s")
		b.ReportMetric(float64(rss)/(1<<20), "RSS-MiB")
		// The Go heap in use, and what the Go runtime holds from the OS
		// (the rest of the RSS is Pebble's memtables and block cache,
		// allocated outside the Go heap, and the binary).
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(ms.Sys-ms.HeapReleased)/(1<<20), "go-MiB")
		if st, err := os.ReadFile("/proc/self/status"); err == nil {
			for _, l := range strings.Split(string(st), "\n") {
				if v, ok := strings.CutPrefix(l, "RssFile:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
					b.ReportMetric(float64(kb)/1024, "RSS-file-MiB")
				}
			}
		}
		var open, unloaded int
		for _, s := range ws.stats() {
			open += s.Engine.OpenWindows
			unloaded += s.Engine.Unloaded
		}
		b.ReportMetric(float64(open), "open-windows")
		b.ReportMetric(float64(unloaded), "unloaded-devices")
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		lg.Close()
		if err := st.Compact(); err != nil {
			b.Fatal(err)
		}
		raw, err := st.RawBytes()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(raw)/float64(total), "raw-B/reading")
		b.ReportMetric(float64(st.TableBytes())/float64(total), "store-B/reading")
		st.Close()
	}
}
