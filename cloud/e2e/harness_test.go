package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/poll"
)

// collectorBin is the gridedge-collector binary built once for this test run.
var collectorBin struct {
	once sync.Once
	path string
	err  error
}

func buildCollector(t testing.TB) string {
	t.Helper()
	collectorBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "gridedge-e2e-bin")
		if err != nil {
			collectorBin.err = err
			return
		}
		collectorBin.path = filepath.Join(dir, "gridedge-collector")
		cmd := exec.Command("go", "build", "-o", collectorBin.path, "github.com/gridedge/gridedge/cmd/gridedge-collector")
		if out, err := cmd.CombinedOutput(); err != nil {
			collectorBin.err = fmt.Errorf("go build gridedge-collector: %v\n%s", err, out)
		}
	})
	if collectorBin.err != nil {
		t.Fatal(collectorBin.err)
	}
	return collectorBin.path
}

// collectorProc is a gridedge-collector child process that a test can
// SIGKILL and start again on the same data directory and HTTP port.
type collectorProc struct {
	t        testing.TB
	bin      string
	args     []string
	httpAddr string
	cmd      *exec.Cmd
	log      *bytes.Buffer
	done     chan struct{}
}

// startCollector starts gridedge-collector on a fresh HTTP port; extra are
// further flags.
func startCollector(t testing.TB, brokerURL, dataDir string, extra ...string) *collectorProc {
	t.Helper()
	addr := freeAddr(t)
	p := &collectorProc{
		t:        t,
		bin:      buildCollector(t),
		httpAddr: addr,
		args: []string{
			"-mqtt-url", brokerURL,
			"-http-addr", addr,
			"-data-dir", dataDir,
			"-client-id", "e2e-collector",
			"-log-level", "warn",
		},
	}
	p.args = append(p.args, extra...)
	p.start()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("collector log:\n%s", p.log.String())
		}
	})
	return p
}

func (p *collectorProc) start() {
	p.t.Helper()
	p.log = &bytes.Buffer{}
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start collector: %v", err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(p.cmd, p.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + p.httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("collector exited at start:\n%s", p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("collector not healthy within 30s:\n%s", p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL, as a crash or power cut would: no shutdown code runs.
func (p *collectorProc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

func (p *collectorProc) getJSON(path string, q url.Values, v any) {
	p.t.Helper()
	u := "http://" + p.httpAddr + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		p.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("GET %s: %s %s", u, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		p.t.Fatalf("GET %s: decode: %v", u, err)
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// truthReading is one row of the simulator's truth file.
type truthReading struct {
	device, channel, quantity string
	epoch, seq                uint64
	time                      time.Time
	value                     float64
}

func parseTruth(t testing.TB, data []byte) []truthReading {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("truth file: %v", err)
	}
	if len(rows) < 2 {
		t.Fatalf("truth file has no readings")
	}
	out := make([]truthReading, 0, len(rows)-1)
	for i, r := range rows[1:] {
		epoch, err1 := strconv.ParseUint(r[3], 10, 64)
		seq, err2 := strconv.ParseUint(r[4], 10, 64)
		ts, err3 := time.Parse(time.RFC3339Nano, r[5])
		val, err4 := strconv.ParseFloat(r[6], 64)
		for _, err := range []error{err1, err2, err3, err4} {
			if err != nil {
				t.Fatalf("truth line %d: %v", i+2, err)
			}
		}
		out = append(out, truthReading{r[0], r[1], r[2], epoch, seq, ts, val})
	}
	return out
}

// window is what /api/v1/windows returns for one window.
type window struct {
	Device   string    `json:"device"`
	Channel  string    `json:"channel"`
	Quantity string    `json:"quantity"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Count    uint64    `json:"count"`
	Sum      float64   `json:"sum"`
	Mean     float64   `json:"mean"`
	Min      float64   `json:"min"`
	Max      float64   `json:"max"`
	Revision uint64    `json:"revision"`
}

type seriesKey struct {
	device, channel, quantity string
	start                     time.Time
}

// expectedWindows computes tumbling windows of size directly from the truth.
func expectedWindows(truth []truthReading, size time.Duration) map[seriesKey]*window {
	out := map[seriesKey]*window{}
	for _, r := range truth {
		start := r.time.Truncate(size)
		k := seriesKey{r.device, r.channel, r.quantity, start.UTC()}
		w := out[k]
		if w == nil {
			w = &window{Device: r.device, Channel: r.channel, Quantity: r.quantity, Start: k.start,
				End: k.start.Add(size), Min: math.Inf(1), Max: math.Inf(-1)}
			out[k] = w
		}
		w.Count++
		w.Sum += r.value
		w.Min = math.Min(w.Min, r.value)
		w.Max = math.Max(w.Max, r.value)
	}
	for _, w := range out {
		w.Mean = w.Sum / float64(w.Count)
	}
	return out
}

// checkExactlyOnce compares every device's stored reading count and every
// one-minute window the collector serves with a direct computation over the
// truth file.
func checkExactlyOnce(t testing.TB, c *collectorProc, truth []truthReading) {
	t.Helper()
	perDevice := map[string]uint64{}
	seen := map[[3]uint64]bool{}
	devIndex := map[string]uint64{}
	for _, r := range truth {
		perDevice[r.device]++
		if _, ok := devIndex[r.device]; !ok {
			devIndex[r.device] = uint64(len(devIndex))
		}
		id := [3]uint64{devIndex[r.device], r.epoch, r.seq}
		if seen[id] {
			t.Fatalf("truth file repeats (device %s, epoch %d, seq %d): sequence numbers must never repeat", r.device, r.epoch, r.seq)
		}
		seen[id] = true
	}

	// The workers commit after the acks, and a device's newest windows are
	// served once idle: poll until the collector has caught up.
	poll.For(t, 90*time.Second, "every reading stored once and every window equal to the truth",
		func() ([]string, error) { return exactlyOnceProblems(c, perDevice, truth), nil },
		func(problems []string) bool { return len(problems) == 0 })
}

func exactlyOnceProblems(c *collectorProc, perDevice map[string]uint64, truth []truthReading) (problems []string) {
	var devs struct {
		Devices []struct {
			ID             string `json:"id"`
			ReadingsStored uint64 `json:"readings_stored"`
		} `json:"devices"`
	}
	c.getJSON("/api/v1/devices", nil, &devs)
	stored := map[string]uint64{}
	for _, d := range devs.Devices {
		stored[d.ID] = d.ReadingsStored
	}
	for dev, n := range perDevice {
		if stored[dev] != n {
			problems = append(problems, fmt.Sprintf("device %s: collector stored %d readings, simulator generated %d", dev, stored[dev], n))
		}
	}

	want := expectedWindows(truth, time.Minute)
	got := map[seriesKey]window{}
	for dev := range perDevice {
		var resp struct {
			Windows []window `json:"windows"`
		}
		c.getJSON("/api/v1/windows", url.Values{"device": {dev}, "size": {"1m"}, "limit": {"100000"}}, &resp)
		for _, w := range resp.Windows {
			got[seriesKey{w.Device, w.Channel, w.Quantity, w.Start.UTC()}] = w
		}
	}
	if len(got) != len(want) {
		problems = append(problems, fmt.Sprintf("collector serves %d one-minute windows, truth gives %d", len(got), len(want)))
	}
	keys := make([]seriesKey, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
	bad := 0
	for _, k := range keys {
		w, g := want[k], got[k]
		if g.Count != w.Count || g.Min != w.Min || g.Max != w.Max || !nearlyEqual(g.Sum, w.Sum) || !nearlyEqual(g.Mean, w.Mean) ||
			!g.End.Equal(w.End) {
			if bad < 10 {
				problems = append(problems, fmt.Sprintf("window %v: got count=%d sum=%v mean=%v min=%v max=%v end=%v, want count=%d sum=%v mean=%v min=%v max=%v end=%v",
					k, g.Count, g.Sum, g.Mean, g.Min, g.Max, g.End, w.Count, w.Sum, w.Mean, w.Min, w.Max, w.End))
			}
			bad++
		}
	}
	if bad > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d windows differ from the truth", bad, len(want)))
	}
	return problems
}

// nearlyEqual compares sums that may have been added in a different order.
func nearlyEqual(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// withTimeout is a context that bounds a whole scenario, so a hang fails the
// test with a message instead of eating the suite's timeout.
func withTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
