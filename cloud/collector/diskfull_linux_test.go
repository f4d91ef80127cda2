package collector

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gridedge/gridedge/shared/diskfree"
	"github.com/gridedge/gridedge/shared/disktest"
	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/wire"
)

// fill writes a file leaving about free bytes on the file system.
func fill(t *testing.T, path string, free int64) {
	t.Helper()
	avail, err := diskfree.Available(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for n := avail - free; n > 0; n -= int64(len(chunk)) {
		if _, err := f.Write(chunk[:min(int64(len(chunk)), n)]); err != nil {
			t.Fatalf("filling: %v", err)
		}
	}
}

func health(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// On a file system filled by another writer, below its free-space reserve
// and then below the workers' write floor, the collector stays up, stops
// acknowledging (batches are refused, so the agent keeps them), says why in
// /healthz and the metrics, and once space returns takes the resent
// batches and stores every reading exactly once.
func TestFullDiskStopsAcksNotTheProcess(t *testing.T) {
	mnt := disktest.Mount(t, 192<<20)
	b := mqtttest.Start(t)
	cfg := testConfig(t, b.URL(), filepath.Join(mnt, "data"))
	cfg.MinFreeBytes = 64 << 20
	c, _ := start(t, cfg)
	var mu sync.Mutex
	acked := map[uint64]bool{}
	a := newAgent(t, b.URL(), "agent-diskfull", func(ack *wire.Ack) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range ack.Ranges {
			for s := r.First; s <= r.Last; s++ {
				acked[s] = true
			}
		}
	})
	nAcked := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	a.publish("site", "meter-1", encode(t, makeBatch("meter-1", 1, 1, 100)))
	waitFor(t, "the first batch acked", func() bool { return nAcked() == 100 })
	waitFor(t, "the first batch stored", func() bool { return readingsStored(t, c.HTTPAddr(), "meter-1") == 100 })

	// Another writer fills the disk below the reserve, then below the
	// workers' write floor (half of it).
	filler := filepath.Join(mnt, "filler")
	for i, free := range []int64{cfg.MinFreeBytes * 3 / 4, cfg.MinFreeBytes / 4} {
		if i > 0 {
			os.Remove(filler)
		}
		fill(t, filler, free)
		refusals := func() int {
			var n int
			for _, line := range strings.Split(scrape(t, c.HTTPAddr()), "\n") {
				if v, ok := strings.CutPrefix(line, "gridedge_collector_disk_refusals_total "); ok {
					fmt.Sscan(v, &n)
				}
			}
			return n
		}
		// The free space is read at most once a second: a batch arriving
		// meanwhile may still be taken (the reserve is there for it). Probe
		// until the collector refuses, then send the batch that must wait.
		probe := makeBatch("meter-1", 1, uint64(1001+100*i), 100)
		before := refusals()
		waitFor(t, "a probe refused for lack of space", func() bool {
			a.publish("site", "meter-1", encode(t, probe))
			return refusals() > before
		})
		before = refusals()
		a.publish("site", "meter-1", encode(t, makeBatch("meter-1", 1, uint64(101+100*i), 100)))
		waitFor(t, "the batch refused", func() bool { return refusals() > before })
		mu.Lock()
		for s := uint64(101 + 100*i); s < uint64(201+100*i); s++ {
			if acked[s] {
				t.Fatalf("seq %d acked while the disk is below its reserve", s)
			}
		}
		mu.Unlock()
		if code, body := health(t, c.HTTPAddr()); code != 503 || !strings.Contains(body, "reserve") {
			t.Fatalf("/healthz while the disk is full: %d %s; want 503 saying why", code, body)
		}
		if m := scrape(t, c.HTTPAddr()); !strings.Contains(m, "gridedge_collector_disk_low 1") {
			t.Fatal("gridedge_collector_disk_low is not 1 while the disk is full")
		}
	}

	// Space returns: the resends are taken, acked and stored once each.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the resent batches acked once space returned", func() bool {
		for _, first := range []uint64{101, 201, 1001, 1101} {
			a.publish("site", "meter-1", encode(t, makeBatch("meter-1", 1, first, 100)))
		}
		return nAcked() == 500
	})
	waitFor(t, "every reading stored once", func() bool { return readingsStored(t, c.HTTPAddr(), "meter-1") == 500 })
	if code, body := health(t, c.HTTPAddr()); code != 200 {
		t.Fatalf("/healthz after space returned: %d %s", code, body)
	}
	if m := scrape(t, c.HTTPAddr()); !strings.Contains(m, "gridedge_collector_disk_low 0") {
		t.Fatal("gridedge_collector_disk_low not back to 0")
	}
}
