package soak

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gridedge/gridedge/edge/agent"
	"github.com/gridedge/gridedge/edge/buffer"
	"github.com/gridedge/gridedge/edge/config"
	"github.com/gridedge/gridedge/edge/status"
	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/poll"
	"github.com/gridedge/gridedge/shared/wire"
)

// The measurements of docs/measurements.md run the real agent (edge/agent
// with the shipped buffer and publisher) in a child process, so its memory
// and CPU are its own: the child is this test binary re-executed with
// agentConfigEnv set, registering a "soak-sine" driver that accepts any
// channel name (the simulator's household driver has only four channels).
// It publishes to a real Mosquitto and a real gridedge-collector.

var (
	agentFor     = flag.Duration("soak.agent-for", 3*time.Minute, "how long BenchmarkAgentFootprint runs the agent")
	agentBin     = flag.String("soak.agent-bin", "", "test binary of this package to run the agent with (e.g. one built for GOARCH=arm); default: this binary")
	agentExec    = flag.String("soak.agent-exec", "", "run the agent binary through this emulator, e.g. qemu-arm-static")
	drainReplay  = flag.Int("soak.drain-replay", 0, "mqtt.replay_rate for BenchmarkDrain (0 = unlimited; the shipped example config says 200)")
	collectorBin = flag.String("soak.collector-bin", "", "a built gridedge-collector to use (default: go build ./cmd/gridedge-collector)")
	drainHours   = flag.Int("soak.drain-hours", 24, "hours of 8 channels at 1 Hz buffered before BenchmarkDrain starts the agent")
	callgrind    = flag.String("soak.callgrind", "", "BenchmarkAgentFootprint: run the agent under valgrind's callgrind, report the CPU instructions it executes per reading (start-up excluded) and keep the profile (callgrind.out.*) in this `directory` for callgrind_annotate")
)

const (
	agentConfigEnv = "GRIDEDGE_SOAK_AGENT_CONFIG"
	// agentProfileEnv names a file for a CPU profile of the child agent.
	agentProfileEnv = "GRIDEDGE_SOAK_AGENT_CPUPROFILE"
	// agentHeapProfileEnv names a file the child agent rewrites with a heap
	// profile whenever its heap reaches a new high (so it ends holding the
	// profile at the peak).
	agentHeapProfileEnv = "GRIDEDGE_SOAK_AGENT_HEAPPROFILE"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(agentConfigEnv); path != "" {
		os.Exit(runAgentChild(path))
	}
	os.Exit(m.Run())
}

// runAgentChild runs the agent until SIGTERM.
func runAgentChild(path string) int {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak agent:", err)
		return 2
	}
	reg := sensor.NewRegistry()
	reg.Register(sensor.Driver{Name: "soak-sine", Summary: "a sine per channel", New: func(sc sensor.Config, _ sensor.Env) (sensor.Sensor, error) {
		return &sineSensor{channel: sc.Channel}, nil
	}})
	a, err := agent.New(cfg, agent.WithRegistry(reg), agent.WithVersion("soak"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak agent:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if prof := os.Getenv(agentProfileEnv); prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak agent:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "soak agent:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	if prof := os.Getenv(agentHeapProfileEnv); prof != "" {
		go profileHeapPeaks(ctx, prof)
	}
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "soak agent:", err)
		return 1
	}
	return 0
}

// profileHeapPeaks writes a heap profile each time the heap in use passes
// its previous high by 10 %.
func profileHeapPeaks(ctx context.Context, path string) {
	var high uint64
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse < high+high/10 {
			continue
		}
		high = ms.HeapInuse
		if f, err := os.Create(path); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
}

type sineSensor struct{ channel string }

func (s *sineSensor) Sense(ctx context.Context) ([]sensor.Value, error) {
	t := float64(time.Now().UnixNano()) / 1e9
	return []sensor.Value{{Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: math.Round(230 + 100*math.Sin(t/60))}}, nil
}
func (s *sineSensor) String() string { return "soak-sine:" + s.channel }
func (s *sineSensor) Close() error   { return nil }

// rig is a broker, a collector and the agent's directories.
type rig struct {
	brokerURL string
	stateDir  string
	bufferDir string
	config    string
	// callgrindOut, when set, runs the agent under callgrind writing here.
	callgrindOut string
}

// callgrindControl runs callgrind_control with args against pid.
func callgrindControl(b *testing.B, pid int, args ...string) {
	b.Helper()
	out, err := exec.Command("callgrind_control", append(args, strconv.Itoa(pid))...).CombinedOutput()
	if err != nil {
		b.Fatalf("callgrind_control %v: %v\n%s", args, err, out)
	}
}

// callgrindInstructions reads the instructions (Ir) counted in the newest
// callgrind dump next to out (callgrind numbers dumps out.1, out.2, ...).
func callgrindInstructions(b *testing.B, out string) float64 {
	b.Helper()
	dumps, _ := filepath.Glob(out + "*")
	var newest string
	var newestMod time.Time
	for _, d := range dumps {
		if fi, err := os.Stat(d); err == nil && fi.ModTime().After(newestMod) {
			newest, newestMod = d, fi.ModTime()
		}
	}
	data, err := os.ReadFile(newest)
	if err != nil {
		b.Fatalf("callgrind dump: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		for _, key := range []string{"totals: ", "summary: "} {
			if v, ok := strings.CutPrefix(line, key); ok {
				n, err := strconv.ParseFloat(strings.Fields(v)[0], 64)
				if err != nil {
					b.Fatalf("callgrind dump %s: %q: %v", newest, line, err)
				}
				return n
			}
		}
	}
	b.Fatalf("callgrind dump %s has no totals", newest)
	return 0
}

// newRig writes the agent's configuration: the example config's defaults
// except the broker, with statusInterval ("" = the default 5s).
func newRig(b *testing.B, replayRate int, statusInterval string) rig {
	b.Helper()
	broker := mqtttest.Start(b)
	root := b.TempDir()
	r := rig{brokerURL: broker.URL(), stateDir: filepath.Join(root, "state"), bufferDir: filepath.Join(root, "buffer"), config: filepath.Join(root, "agent.yaml")}
	startCollector(b, broker.URL(), filepath.Join(root, "collector"))
	var ch strings.Builder
	for i := range 8 {
		fmt.Fprintf(&ch, "  - {name: ch%d, driver: soak-sine, interval: 1s, quantities: [active_power]}\n", i)
	}
	yaml := fmt.Sprintf(`device_id: soak-0001
site: soak
state_dir: %s
%smetrics_addr: ""
mqtt:
  url: %s
  client_id: gridedge-soak-0001
  replay_rate: %d
buffer:
  dir: %s
channels:
%s`, r.stateDir, statusLine(statusInterval), r.brokerURL, replayRate, r.bufferDir, ch.String())
	if err := os.WriteFile(r.config, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	return r
}

func statusLine(interval string) string {
	if interval == "" {
		return ""
	}
	return "status_interval: " + interval + "\n"
}

func startCollector(b *testing.B, brokerURL, dataDir string) {
	b.Helper()
	bin := *collectorBin
	if bin == "" {
		bin = filepath.Join(b.TempDir(), "gridedge-collector")
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/gridedge/gridedge/cmd/gridedge-collector").CombinedOutput(); err != nil {
			b.Fatalf("build the collector: %v\n%s", err, out)
		}
	}
	cmd := exec.Command(bin, "-mqtt-url", brokerURL, "-http-addr", "127.0.0.1:0", "-data-dir", dataDir,
		"-client-id", "soak-collector", "-log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the collector: %v", err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
}

// startAgent starts the child agent and returns its process.
func (r rig) startAgent(b *testing.B) *exec.Cmd {
	b.Helper()
	bin := *agentBin
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			b.Fatal(err)
		}
	}
	args := []string{bin, "-test.run=^$"}
	if *agentExec != "" {
		args = append([]string{*agentExec}, args...)
	}
	if r.callgrindOut != "" {
		// Instrumentation starts switched off (start-up runs at near
		// native speed); the benchmark switches it on for the measured
		// window and dumps the counts at its end.
		args = append([]string{"valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=" + r.callgrindOut}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), agentConfigEnv+"="+r.config)
	if r.callgrindOut != "" {
		// Go's preemption signals (SIGURG) can trip callgrind's signal
		// bookkeeping; goroutines still yield at every call.
		cmd.Env = append(cmd.Env, "GODEBUG=asyncpreemptoff=1")
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the agent: %v", err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	return cmd
}

// procStats is what /proc/PID says about a process.
type procStats struct {
	cpu        time.Duration // utime + stime
	hwm, rss   int64
	writeBytes int64
}

func readProc(pid int) (procStats, error) {
	var p procStats
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return p, err
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields of the line, in clock ticks (USER_HZ = 100 on
	// Linux for every architecture the agent runs on).
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return p, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	p.cpu = time.Duration(ut+st) * 10 * time.Millisecond
	if s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(s), "\n") {
			switch {
			case strings.HasPrefix(line, "VmHWM:"):
				p.hwm = kB(line)
			case strings.HasPrefix(line, "VmRSS:"):
				p.rss = kB(line)
			}
		}
	}
	if io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		for _, line := range strings.Split(string(io), "\n") {
			if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
				p.writeBytes, _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	return p, nil
}

// waitStatus polls status.json until ok accepts it.
func waitStatus(b *testing.B, dir string, within time.Duration, ok func(status.Snapshot) bool) status.Snapshot {
	b.Helper()
	return poll.For(b, within, "the agent's status", func() (status.Snapshot, error) { return status.Read(dir) }, ok)
}

// BenchmarkAgentFootprint runs the agent with 8 channels at 1 Hz for
// -soak.agent-for and reports its peak RSS, CPU and disk writes per reading.
// It ignores b.N: run it with -benchtime=1x.
func BenchmarkAgentFootprint(b *testing.B) {
	r := newRig(b, 200, "")
	if *callgrind != "" {
		if err := os.MkdirAll(*callgrind, 0o755); err != nil {
			b.Fatal(err)
		}
		r.callgrindOut = filepath.Join(*callgrind, "callgrind.out")
	}
	cmd := r.startAgent(b)
	pid := cmd.Process.Pid
	// Warm-up: connected and acked, so start-up (Badger opening, the first
	// connection) is not charged to the steady state.
	first := waitStatus(b, r.stateDir, 2*time.Minute, func(s status.Snapshot) bool { return s.Connected && s.Acked > 0 })
	p0, err := readProc(pid)
	if err != nil {
		b.Fatal(err)
	}
	if r.callgrindOut != "" {
		callgrindControl(b, pid, "--instr=on")
		first, err = status.Read(r.stateDir)
		if err != nil {
			b.Fatal(err)
		}
	}
	t0 := time.Now()
	b.ResetTimer()
	time.Sleep(*agentFor)
	b.StopTimer()
	if r.callgrindOut != "" {
		callgrindControl(b, pid, "--dump")
	}
	p1, err := readProc(pid)
	if err != nil {
		b.Fatal(err)
	}
	last, err := status.Read(r.stateDir)
	if err != nil {
		b.Fatal(err)
	}
	wall := time.Since(t0)
	readings := float64(last.Generated - first.Generated)
	if readings <= 0 || last.Acked == 0 {
		b.Fatalf("agent generated %v readings, acked %d", readings, last.Acked)
	}
	cpu := p1.cpu - p0.cpu
	b.ReportMetric(mb(p1.hwm), "peak-RSS-MB")
	b.ReportMetric(mb(p1.rss), "RSS-MB")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%-of-a-core")
	b.ReportMetric(float64(cpu.Microseconds())/readings, "CPU-µs/reading")
	b.ReportMetric(float64(p1.writeBytes-p0.writeBytes)/readings, "written-B/reading")
	b.ReportMetric(readings/wall.Seconds(), "readings/s")
	b.ReportMetric(float64(last.Buffered), "buffered-at-end")
	b.ReportMetric(mb(last.DiskBytes), "buffer-disk-MB")
	if r.callgrindOut != "" {
		// The status file is rewritten every status_interval: the readings
		// count lags by up to that, over a window of minutes.
		b.ReportMetric(callgrindInstructions(b, r.callgrindOut)/readings, "instructions/reading")
	}
}

// BenchmarkDrain buffers -soak.drain-hours of 8 channels at 1 Hz (24 h =
// 691,200 readings, as after a day-long outage), then starts the agent and
// reports how fast the backlog drains to a local broker and collector while
// live readings keep flowing. It ignores b.N: run it with -benchtime=1x.
func BenchmarkDrain(b *testing.B) {
	r := newRig(b, *drainReplay, "1s")
	backlog := prefill(b, r, time.Duration(*drainHours)*time.Hour)
	start := time.Now()
	b.ResetTimer()
	cmd := r.startAgent(b)
	// Drained: nothing older than the agent's start is left unacked.
	last := waitStatus(b, r.stateDir, 2*time.Hour, func(s status.Snapshot) bool {
		return s.Acked >= uint64(backlog) && (s.OldestUnsent.IsZero() || !s.OldestUnsent.Before(start))
	})
	secs := time.Since(start).Seconds()
	b.StopTimer()
	p, _ := readProc(cmd.Process.Pid)
	b.ReportMetric(secs, "s-to-drain")
	b.ReportMetric(float64(backlog)/secs, "backlog-readings/s")
	b.ReportMetric(float64(backlog), "backlog-readings")
	b.ReportMetric(float64(last.Resent), "resent")
	b.ReportMetric(mb(p.hwm), "peak-RSS-MB")
	b.ReportMetric(float64(p.cpu.Microseconds())/float64(last.Acked), "CPU-µs/reading")
}

// prefill appends the readings 8 channels at 1 Hz took during the span
// before now, through the real buffer in the agent's directories, as the
// agent would have during an outage.
func prefill(b *testing.B, r rig, span time.Duration) int {
	b.Helper()
	buf, err := buffer.Open(r.bufferDir, r.stateDir)
	if err != nil {
		b.Fatal(err)
	}
	from := time.Now().Add(-span).Truncate(time.Second)
	ticks := int(span / time.Second)
	rs := make([]*wire.Reading, 0, 8*60)
	for tick := range ticks {
		at := from.Add(time.Duration(tick) * time.Second)
		for ch := range 8 {
			rs = append(rs, &wire.Reading{Channel: fmt.Sprintf("ch%d", ch), Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER,
				Value: float64(200 + ch), WallNs: at.UnixNano(), MonoNs: int64(time.Duration(tick) * time.Second),
				TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED})
		}
		if len(rs) == cap(rs) || tick == ticks-1 {
			if err := buf.Append("soak-prefill-boot", rs...); err != nil {
				b.Fatal(err)
			}
			rs = rs[:0]
		}
	}
	n := int(buf.Len())
	if err := buf.Close(); err != nil {
		b.Fatal(err)
	}
	return n
}
