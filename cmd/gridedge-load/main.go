// Command gridedge-load runs a load test on this machine: it starts a
// Mosquitto broker, the gridedge-collector binary and gridedge-sim with the
// given fleet and ramp (in real time: speed 1), shows live progress, and
// ends with a report (human and JSON): readings/s sustained, end-to-end ack
// latency, generation-to-result latency, lag, CPU and memory per process,
// and the zero-loss verdict (every reading each meter generated is stored
// by the collector, once). `make load` runs it; see docs/simulator.md.
//
//	gridedge-load -meters 4000 -ramp 100/5s -duration 20m -out load.json
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gridedge/gridedge/edge/sim"
	"github.com/gridedge/gridedge/shared/mqtttest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type settings struct {
	bin, dir, out                  string
	meters                         int
	ramp, jitter, faults, buffer   string
	duration, interval, drain      time.Duration
	reversed                       float64
	states, keep                   bool
	probes                         int
	collectorArgs, simArgs         string
	commitLabel                    string
	progressEvery, storedPollEvery time.Duration
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gridedge-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s settings
	fs.StringVar(&s.bin, "bin", "bin", "`directory` holding gridedge-collector and gridedge-sim")
	fs.StringVar(&s.dir, "dir", "", "work `directory` (broker config, collector store, logs; default: temporary, removed unless -keep)")
	fs.BoolVar(&s.keep, "keep", false, "keep the work directory")
	fs.StringVar(&s.out, "out", "load-report.json", "write the JSON report to this `file`")
	fs.IntVar(&s.meters, "meters", 1000, "virtual meters")
	fs.StringVar(&s.ramp, "ramp", "", "start meters in steps, STEP/EVERY, e.g. 100/5s (default: all at once)")
	fs.DurationVar(&s.duration, "duration", 5*time.Minute, "sampling `time` (real time: the simulator runs at speed 1)")
	fs.DurationVar(&s.interval, "interval", time.Second, "sampling `interval` of every channel")
	fs.StringVar(&s.buffer, "buffer", sim.BufferMemory, "simulator buffer mode: disk, shared or memory")
	fs.StringVar(&s.jitter, "jitter", "", "simulator publish jitter, e.g. 1s..3s+1ms..100ms")
	fs.StringVar(&s.faults, "faults", "", "simulator faults, e.g. offline:1%:2m,drop:5%")
	fs.Float64Var(&s.reversed, "reversed-pairs", 0, "probability of a reversed pair of samples")
	fs.BoolVar(&s.states, "states", false, "add the appliance state channels")
	fs.DurationVar(&s.drain, "drain-timeout", 10*time.Minute, "after sampling, how long the simulator waits for every ack")
	fs.IntVar(&s.probes, "probes", 8, "meters whose window results are polled for the generation-to-result latency")
	fs.StringVar(&s.collectorArgs, "collector-args", "", "extra collector flags, space separated")
	fs.StringVar(&s.simArgs, "sim-args", "", "extra simulator flags, space separated")
	fs.DurationVar(&s.progressEvery, "progress", 5*time.Second, "print a progress line every `interval`")
	fs.DurationVar(&s.storedPollEvery, "stored-poll", 5*time.Second, "how often to ask the collector how many readings it stored")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || s.meters < 1 || s.duration <= 0 || s.interval <= 0 || s.probes < 0 {
		fmt.Fprintln(stderr, "gridedge-load: need -meters >= 1, -duration > 0, -interval > 0 and no arguments")
		return 2
	}
	if _, err := sim.ParseRamp(s.ramp); err != nil {
		fmt.Fprintf(stderr, "gridedge-load: %v\n", err)
		return 2
	}
	rep, err := load(ctx, s, stdout)
	if rep != nil {
		rep.print(stdout)
		if werr := writeJSON(s.out, rep); werr != nil {
			fmt.Fprintf(stderr, "gridedge-load: %v\n", werr)
			return 1
		}
		fmt.Fprintf(stdout, "report written to %s\n", s.out)
	}
	if err != nil {
		fmt.Fprintf(stderr, "gridedge-load: %v\n", err)
		return 1
	}
	if !rep.ZeroLoss {
		return 1
	}
	return 0
}

func load(ctx context.Context, s settings, stdout io.Writer) (*report, error) {
	if s.dir == "" {
		d, err := os.MkdirTemp("", "gridedge-load-")
		if err != nil {
			return nil, err
		}
		s.dir = d
		if !s.keep {
			defer os.RemoveAll(d)
		}
	}
	// Children inherit the limit: a socket per meter in the simulator and
	// the broker.
	if _, err := sim.RaiseOpenFiles(uint64(s.meters)*3 + 4096); err != nil {
		fmt.Fprintf(stdout, "warning: %v\n", err)
	}
	mosq, err := mqtttest.Binary()
	if err != nil {
		return nil, err
	}
	brokerAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := strings.Cut(brokerAddr, ":")
	conf := filepath.Join(s.dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(
		"listener %s 127.0.0.1\nallow_anonymous true\nmax_connections -1\npersistence false\n"+
			"max_queued_messages 1000000\nmax_inflight_messages 1000\nlog_type error\nlog_type warning\n", port)), 0o600); err != nil {
		return nil, err
	}
	broker, err := startProc("mosquitto", filepath.Join(s.dir, "mosquitto.log"), mosq, "-c", conf)
	if err != nil {
		return nil, err
	}
	defer broker.stop(5 * time.Second)
	if err := waitTCP(ctx, brokerAddr, 10*time.Second); err != nil {
		return nil, fmt.Errorf("mosquitto: %w\n%s", err, tail(broker.log.Name(), 2000))
	}
	mqttURL := "tcp://" + brokerAddr

	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	colArgs := append([]string{"-mqtt-url", mqttURL, "-http-addr", httpAddr, "-data-dir", filepath.Join(s.dir, "collector"),
		"-log-level", "warn"}, strings.Fields(s.collectorArgs)...)
	col, err := startProc("gridedge-collector", filepath.Join(s.dir, "collector.log"), filepath.Join(s.bin, "gridedge-collector"), colArgs...)
	if err != nil {
		return nil, err
	}
	defer col.stop(30 * time.Second)
	api := &apiClient{base: "http://" + httpAddr, http: &http.Client{Timeout: 60 * time.Second}}
	if err := api.waitHealthy(ctx, 30*time.Second); err != nil {
		return nil, fmt.Errorf("collector: %w\n%s", err, tail(col.log.Name(), 2000))
	}

	progressPath := filepath.Join(s.dir, "progress.jsonl")
	resultPath := filepath.Join(s.dir, "sim-result.json")
	simArgs := []string{"-mqtt-url", mqttURL, "-meters", strconv.Itoa(s.meters), "-speed", "1", "-interval", s.interval.String(),
		"-duration", s.duration.String(), "-buffer", s.buffer, "-drain-timeout", s.drain.String(),
		"-progress-json", progressPath, "-result-json", resultPath, "-data-dir", filepath.Join(s.dir, "sim"), "-site", "load"}
	for flag, v := range map[string]string{"-ramp": s.ramp, "-jitter": s.jitter, "-faults": s.faults} {
		if v != "" {
			simArgs = append(simArgs, flag, v)
		}
	}
	if s.reversed > 0 {
		simArgs = append(simArgs, "-reversed-pairs", strconv.FormatFloat(s.reversed, 'g', -1, 64))
	}
	if s.states {
		simArgs = append(simArgs, "-states")
	}
	simArgs = append(simArgs, strings.Fields(s.simArgs)...)

	rep := &report{Meters: s.meters, Ramp: s.ramp, Duration: s.duration, Interval: s.interval, Buffer: s.buffer,
		Jitter: s.jitter, Faults: s.faults, Started: time.Now().UTC(), Commit: gitCommit()}
	procs := []*proc{broker, col}
	for _, p := range procs {
		p.cpu0 = p.usage().CPU
	}
	simProc, err := startProc("gridedge-sim", filepath.Join(s.dir, "sim.log"), filepath.Join(s.bin, "gridedge-sim"), simArgs...)
	if err != nil {
		return nil, err
	}
	defer simProc.stop(time.Minute)
	procs = append(procs, simProc)
	began := time.Now()

	mon := newMonitor(s, api, procs, began)
	var simErr error
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
watch:
	for {
		select {
		case <-ctx.Done():
			simProc.stop(time.Minute)
			simErr = ctx.Err()
			break watch
		case <-simProc.exited:
			simErr = simProc.err
			break watch
		case <-tick.C:
			mon.step(progressPath, stdout)
		}
	}
	rep.Wall = time.Since(began)
	mon.step(progressPath, io.Discard)
	rep.fillProgress(mon, s)
	for _, p := range procs {
		rep.Processes = append(rep.Processes, p.figures(mon.last[p.name], rep.Wall))
	}
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	var res sim.Result
	if b, err := os.ReadFile(resultPath); err != nil || json.Unmarshal(b, &res) != nil {
		return rep, fmt.Errorf("simulator left no result (%v)\n%s", simErr, tail(filepath.Join(s.dir, "sim.log"), 3000))
	}
	rep.Generated, rep.Unacked = res.Generated, res.Unacked
	rep.AckP50, rep.AckP99 = res.AckP50, res.AckP99
	rep.verify(ctx, api, res)
	rep.SimExit = fmt.Sprint(simErr)
	if simErr == nil {
		rep.SimExit = "ok"
	}
	return rep, nil
}

// monitor follows the simulator's progress and polls the collector.
type monitor struct {
	s        settings
	api      *apiClient
	procs    []*proc
	began    time.Time
	offset   int64
	history  []sim.Progress
	last     map[string]usage
	prevCPU  map[string]time.Duration
	prevAt   time.Time
	stored   uint64
	storedAt time.Time
	maxLag   int64 // generated - stored at the collector
	results  *resultProbe
	printed  time.Time
}

func newMonitor(s settings, api *apiClient, procs []*proc, began time.Time) *monitor {
	m := &monitor{s: s, api: api, procs: procs, began: began, last: map[string]usage{}, prevCPU: map[string]time.Duration{},
		prevAt: began, results: newResultProbe(s.probes)}
	return m
}

func (m *monitor) step(progressPath string, out io.Writer) {
	if f, err := os.Open(progressPath); err == nil {
		_, _ = f.Seek(m.offset, io.SeekStart)
		r := bufio.NewReader(f)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				break // a partial line is read again next time
			}
			m.offset += int64(len(line))
			var p sim.Progress
			if json.Unmarshal(line, &p) == nil {
				m.history = append(m.history, p)
			}
		}
		f.Close()
	}
	now := time.Now()
	cpu := map[string]float64{}
	for _, p := range m.procs {
		u := p.usage()
		if u.PeakRSS > 0 {
			m.last[p.name] = u
		}
		if dt := now.Sub(m.prevAt).Seconds(); dt > 0 {
			cpu[p.name] = 100 * (u.CPU - m.prevCPU[p.name]).Seconds() / dt
		}
		m.prevCPU[p.name] = u.CPU
	}
	m.prevAt = now
	if now.Sub(m.storedAt) >= m.s.storedPollEvery {
		if n, err := m.api.storedTotal(); err == nil {
			m.stored, m.storedAt = n, now
			if len(m.history) > 0 {
				m.maxLag = max(m.maxLag, int64(m.history[len(m.history)-1].Generated)-int64(n))
			}
		}
		m.results.poll(m.api, now)
	}
	if now.Sub(m.printed) < m.s.progressEvery || len(m.history) == 0 {
		return
	}
	m.printed = now
	p := m.history[len(m.history)-1]
	fmt.Fprintf(out, "%5.0fs meters %d/%d conn %d | gen %.0f/s ack %.0f/s | stored %d lag %d | ack p50 %s p99 %s | cpu%% sim %.0f col %.0f mosq %.0f\n",
		time.Since(m.began).Seconds(), p.Started, m.s.meters, p.Connected, p.GeneratedPerSec, p.AckedPerSec, m.stored,
		int64(p.Generated)-int64(m.stored), p.AckP50.Round(time.Millisecond), p.AckP99.Round(time.Millisecond),
		cpu["gridedge-sim"], cpu["gridedge-collector"], cpu["mosquitto"])
}

// apiClient talks to the collector's HTTP API.
type apiClient struct {
	base string
	http *http.Client
}

func (a *apiClient) waitHealthy(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		resp, err := a.http.Get(a.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not healthy within %s: %v", d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (a *apiClient) get(path string, q url.Values, v any) error {
	u := a.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp, err := a.http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s %s", u, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// stored returns the readings the collector stored, per device.
func (a *apiClient) stored() (map[string]uint64, error) {
	var devs struct {
		Devices []struct {
			ID             string `json:"id"`
			ReadingsStored uint64 `json:"readings_stored"`
		} `json:"devices"`
	}
	if err := a.get("/api/v1/devices", nil, &devs); err != nil {
		return nil, err
	}
	out := make(map[string]uint64, len(devs.Devices))
	for _, d := range devs.Devices {
		out[d.ID] = d.ReadingsStored
	}
	return out, nil
}

func (a *apiClient) storedTotal() (uint64, error) {
	m, err := a.stored()
	var n uint64
	for _, v := range m {
		n += v
	}
	return n, err
}

// resultProbe records when the collector first serves each final
// one-minute result of a few meters.
type resultProbe struct {
	devices   []string
	seen      map[string]bool
	latencies []time.Duration
}

func newResultProbe(n int) *resultProbe {
	p := &resultProbe{seen: map[string]bool{}}
	for i := 1; i <= n; i++ {
		p.devices = append(p.devices, fmt.Sprintf("sim-%04d", i))
	}
	return p
}

// poll asks for the probed meters' results. At speed 1 simulated time is
// wall time, so a window's end is when its last reading was generated (plus
// the jitter, if any): the latency is when the result was first seen minus
// the window's end, to within the polling interval. A window fires when
// its meter's watermark passes its end, so the figure includes the
// collector's out-of-orderness allowance.
func (p *resultProbe) poll(a *apiClient, now time.Time) {
	for _, d := range p.devices {
		var resp struct {
			Results []struct {
				Channel     string    `json:"channel"`
				Quantity    string    `json:"quantity"`
				Start       time.Time `json:"start"`
				End         time.Time `json:"end"`
				Provisional bool      `json:"provisional"`
			} `json:"results"`
		}
		if a.get("/api/v1/results", url.Values{"pipeline": {"power_1m"}, "device": {d}, "limit": {"100000"}}, &resp) != nil {
			continue
		}
		for _, r := range resp.Results {
			k := d + "|" + r.Channel + "|" + r.Quantity + "|" + r.Start.String()
			if r.Provisional || p.seen[k] {
				continue
			}
			p.seen[k] = true
			// The collector's store is fresh: every result is of this run.
			p.latencies = append(p.latencies, now.Sub(r.End))
		}
	}
}

func (p *resultProbe) quantiles() (n int, p50, p99 time.Duration) {
	if len(p.latencies) == 0 {
		return 0, 0, 0
	}
	l := append([]time.Duration(nil), p.latencies...)
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	at := func(q float64) time.Duration { return l[min(len(l)-1, int(q*float64(len(l))))] }
	return len(l), at(0.5), at(0.99)
}

func waitTCP(ctx context.Context, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
