// Command gridedge-sim runs many virtual meters through the real agent
// pipeline against a broker, on simulated time, and exits 0 only when
// every generated reading was acknowledged end to end by the collector.
//
//	gridedge-sim -mqtt-url tcp://127.0.0.1:1883 -meters 50 -duration 24h -speed 1440 -truth truth.csv
//	gridedge-sim -meters 50000 -interval 1s -speed 1 -duration 10m -buffer memory -ramp 1000/1s
//	gridedge-sim -play recording.bin
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only with -pprof
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gridedge/gridedge/edge/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the flags that are not sim.Config fields.
type options struct {
	truth, record, play  string
	credentials, sources string
	ramp, jitter, faults string
	start                string
	progress             time.Duration
	progressJSON, result string
	pprof                string
	verbose              bool
	playTimeout          time.Duration
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gridedge-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg sim.Config
	var o options
	fs.StringVar(&cfg.MQTTURL, "mqtt-url", "tcp://127.0.0.1:1883", "broker `URL` the virtual meters publish to")
	fs.StringVar(&cfg.Site, "site", "sim", "site `name` in the meters' topics (gridedge/v1/<site>/<device>/...)")
	fs.IntVar(&cfg.Meters, "meters", 1, fmt.Sprintf("number of virtual meters (1..%d); each is a full agent with its own device id (sim-0001, ...), buffer and MQTT session", sim.MaxMeters))
	fs.StringVar(&cfg.DevicePrefix, "device-prefix", "sim-", "device id `prefix`; ids are prefix0001, prefix0002, ...")
	fs.DurationVar(&cfg.Duration, "duration", 24*time.Hour, "simulated `time` to sample; 0: until interrupted (household), the whole file (replay)")
	fs.DurationVar(&cfg.Backfill, "backfill", 0, "start this simulated `time` before now: sample the past at -speed until the present, then at real time (household; the clock never passes the wall clock)")
	fs.Float64Var(&cfg.Speed, "speed", 1440, "simulated seconds per real second (1440: a simulated day in one real minute; 1: real time, starting now)")
	fs.StringVar(&cfg.Profile, "profile", sim.ProfileHousehold, "`household` (synthetic home: base load, fridge, kettle, oven, washer, water heater; channels mains+energy, sub1..sub3) or replay (the real UCI household file, one reading per file minute)")
	fs.StringVar(&cfg.ReplayFile, "replay-file", sim.DefaultReplayFile, "UCI household CSV `file` for -profile replay")
	fs.BoolVar(&cfg.States, "states", false, "add the appliance on/off channels (kettle, oven, washer, fridge, water_heater; quantity state), household profile")
	fs.StringVar(&cfg.Buffer, "buffer", sim.BufferDisk, "where meters buffer readings: `disk` (each its own store, as a gateway: ~1.5 MB a meter), shared (one journaled store, a namespace each, fsynced once a second for all) or memory (one store in memory, written at a clean stop)")
	fs.StringVar(&o.truth, "truth", "", "write every generated reading to this CSV `file` (device,channel,quantity,seq_epoch,seq,time,value)")
	fs.StringVar(&o.record, "record", "", "record every generated reading to this `file`, for -play")
	fs.StringVar(&o.play, "play", "", "instead of simulating, send the readings recorded in this `file` through one publisher per device, as fast as the collector acknowledges them")
	fs.DurationVar(&o.playTimeout, "play-timeout", 30*time.Minute, "with -play: give up after this real `time`")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "`directory` for the meters' buffers and state (default: a temporary directory, removed at exit)")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", 2*time.Minute, "after sampling ends, how long (real `time`) to wait for every reading to be acked before giving up")
	fs.DurationVar(&cfg.Interval, "interval", 10*time.Second, "household sampling interval in simulated `time` (replay always samples once per file minute)")
	fs.Int64Var(&cfg.Seed, "seed", 1, "`seed` of the household loads, faults, jitter and reversed pairs: the same seed gives the same run")
	fs.StringVar(&o.start, "start", "", "simulated start, RFC 3339, not in the future (household; default: -backfill before now, else -duration before now, so the run ends at the present; with -speed 1 or -duration 0, now; a -data-dir that already sampled continues after its newest sample)")
	fs.DurationVar(&cfg.AckTimeout, "ack-timeout", 10*time.Second, "resend a batch the collector has not acked within this real `time`")
	fs.StringVar(&o.ramp, "ramp", "", "start meters in steps of STEP every EVERY real time, e.g. 100/5s (default: all at once)")
	fs.StringVar(&o.jitter, "jitter", "", "delay each sample's reading by a random real time, MIN..MAX[+MIN..MAX], e.g. 1s..3s+1ms..100ms")
	fs.Float64Var(&cfg.ReversedPairs, "reversed-pairs", 0, "probability (0..1) that a sample and the next are taken and sent in reverse order")
	fs.StringVar(&o.faults, "faults", "", "faults per meter, KIND:WHO[:DURATION],...: offline:5%:2m (5% of meters offline once for 2 m), drop:10% (connection cut once), clockless:2%:3m (boot without clock or network for 3 m), offline:sim-0007@10m:5m (one meter, at 10 m)")
	fs.StringVar(&o.credentials, "credentials", "", "MQTT credentials `file`: lines \"<site>/<device_id> <secret>\"; each meter connects as that user with client id = user")
	fs.StringVar(&o.sources, "source-addrs", "", "comma-separated local `addresses` the meters connect from, round robin (default: 127.0.0.1, 127.0.0.2, ... as needed beyond 20,000 meters on a loopback broker)")
	fs.DurationVar(&o.progress, "progress", 0, "print a progress line to stderr every `interval` (0: none)")
	fs.StringVar(&o.progressJSON, "progress-json", "", "append a JSON progress line every second to this `file`")
	fs.StringVar(&o.result, "result-json", "", "write the run's result (per meter) as JSON to this `file`")
	fs.StringVar(&o.pprof, "pprof", "", "serve Go profiles (/debug/pprof/) on this loopback `address`, e.g. 127.0.0.1:6060")
	fs.BoolVar(&o.verbose, "v", false, "log each meter's connection events")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: gridedge-sim [flags]\n\n"+
			"Runs virtual meters through the real agent pipeline (sensor → sampler → buffer\n"+
			"→ MQTT publisher). When -duration of simulated time has been sampled it\n"+
			"waits until the collector has acknowledged every reading and exits 0; after\n"+
			"-drain-timeout it prints the unacknowledged readings per meter and exits 1.\n"+
			"Invalid flags exit 2 before anything starts.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(err error) int {
		fmt.Fprintf(stderr, "gridedge-sim: %v\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		return usage(fmt.Errorf("unexpected arguments: %v", fs.Args()))
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	var err error
	if o.credentials != "" {
		if cfg.Credentials, err = sim.ReadCredentials(o.credentials); err != nil {
			return usage(err)
		}
	}
	if cfg.SourceAddrs, err = sim.ParseSourceAddrs(o.sources); err != nil {
		return usage(err)
	}
	if o.play != "" {
		return play(ctx, cfg, o, stdout, stderr)
	}
	if cfg.Ramp, err = sim.ParseRamp(o.ramp); err != nil {
		return usage(err)
	}
	if cfg.Jitter, err = sim.ParseJitter(o.jitter); err != nil {
		return usage(err)
	}
	if cfg.Faults, err = sim.ParseFaults(o.faults); err != nil {
		return usage(err)
	}
	if o.start != "" {
		t, err := time.Parse(time.RFC3339, o.start)
		if err != nil {
			return usage(fmt.Errorf("start: %v", err))
		}
		cfg.Start = t
	}
	check := cfg
	if check.DataDir == "" {
		check.DataDir = "(temporary)"
	}
	if err := check.Validate(); err != nil {
		return usage(err)
	}
	if err := servePprof(o.pprof, cfg.Logger); err != nil {
		return usage(err)
	}
	// A socket per meter, and a store's files per meter on disk.
	perMeter := uint64(2)
	if cfg.Buffer == sim.BufferDisk {
		perMeter = 24
	}
	if _, err := sim.RaiseOpenFiles(uint64(cfg.Meters)*perMeter + 1024); err != nil {
		fmt.Fprintf(stderr, "gridedge-sim: warning: %v\n", err)
	}

	if cfg.DataDir == "" {
		dir, err := os.MkdirTemp("", "gridedge-sim-")
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		cfg.DataDir = dir
	}
	var closers []func() error
	for _, out := range []struct {
		path string
		set  func(io.Writer)
	}{
		{o.truth, func(w io.Writer) { cfg.Truth = w }},
		{o.record, func(w io.Writer) { cfg.Record = w }},
	} {
		if out.path == "" {
			continue
		}
		f, err := os.Create(out.path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		closers = append(closers, f.Close)
		out.set(f)
	}
	progress, closeProgress, err := progressReporter(o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	closers = append(closers, closeProgress)
	cfg.Progress = progress

	began := time.Now()
	res, err := sim.Run(ctx, cfg)
	for _, c := range closers {
		if cerr := c(); cerr != nil && err == nil {
			err = cerr
		}
	}
	if o.result != "" {
		if werr := writeJSON(o.result, res); werr != nil && err == nil {
			err = werr
		}
	}
	summarise(stdout, res, cfg, time.Since(began))
	if err != nil {
		for _, m := range res.Meters {
			if m.Unacked > 0 {
				fmt.Fprintf(stdout, "%s: %d of %d readings unacknowledged\n", m.Device, m.Unacked, m.Generated)
			}
		}
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// summarise prints what actually ran.
func summarise(w io.Writer, res sim.Result, cfg sim.Config, real time.Duration) {
	span := fmt.Sprintf("simulated %s .. %s", res.SimStart.Format(time.RFC3339), res.SimEnd.Format(time.RFC3339))
	meters := fmt.Sprintf("%d meters", len(res.Meters))
	if res.Interrupted {
		planned := "of the " + res.PlannedEnd.Sub(res.SimStart).String() + " planned"
		if cfg.Duration == 0 && cfg.Profile != sim.ProfileReplay {
			planned = "no end planned"
		}
		span = fmt.Sprintf("interrupted: simulated %s .. %s (%s %s)", res.SimStart.Format(time.RFC3339),
			res.SimEnd.Format(time.RFC3339), res.SimEnd.Sub(res.SimStart), planned)
		if len(res.Meters) < cfg.Meters {
			meters = fmt.Sprintf("%d of %d meters started", len(res.Meters), cfg.Meters)
		}
	}
	fmt.Fprintf(w, "%s: %s, %d readings generated, %d unacknowledged, %s real time\n",
		span, meters, res.Generated, res.Unacked, real.Round(time.Millisecond))
	if res.AckP99 > 0 {
		fmt.Fprintf(w, "end-to-end ack latency: p50 %s, p99 %s\n", res.AckP50.Round(time.Millisecond), res.AckP99.Round(time.Millisecond))
	}
	if res.Missing > 0 {
		fmt.Fprintf(w, "replay skipped %d missing (?) values\n", res.Missing)
	}
}

// progressReporter returns the progress callback for -progress and
// -progress-json (nil when neither is set) and the function closing its
// file.
func progressReporter(o options, stderr io.Writer) (func(sim.Progress), func() error, error) {
	if o.progress <= 0 && o.progressJSON == "" {
		return nil, func() error { return nil }, nil
	}
	var enc *json.Encoder
	closeFn := func() error { return nil }
	if o.progressJSON != "" {
		f, err := os.Create(o.progressJSON)
		if err != nil {
			return nil, nil, err
		}
		enc, closeFn = json.NewEncoder(f), f.Close
	}
	var lastPrint time.Duration
	return func(p sim.Progress) {
		if enc != nil {
			_ = enc.Encode(p)
		}
		if o.progress > 0 && (p.Final || p.Elapsed-lastPrint >= o.progress) {
			lastPrint = p.Elapsed
			fmt.Fprintf(stderr, "%6.0fs  sim %s  meters %d started, %d connected  generated %d (%.0f/s)  acked %d (%.0f/s)  lag %d  ack p50 %s p99 %s\n",
				p.Elapsed.Seconds(), p.SimTime.Format("15:04:05"), p.Started, p.Connected, p.Generated, p.GeneratedPerSec,
				p.Acked, p.AckedPerSec, p.Lag, p.AckP50.Round(time.Millisecond), p.AckP99.Round(time.Millisecond))
		}
	}, closeFn, nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// servePprof serves the Go profiles on addr (nothing when addr is empty).
func servePprof(addr string, log *slog.Logger) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pprof: %w", err)
	}
	srv := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil {
			log.Error("pprof server stopped", "err", err)
		}
	}()
	return nil
}

// play sends a recording (-play).
func play(ctx context.Context, cfg sim.Config, o options, stdout, stderr io.Writer) int {
	f, err := os.Open(o.play)
	if err != nil {
		fmt.Fprintf(stderr, "gridedge-sim: %v\n", err)
		return 2
	}
	defer f.Close()
	dir := cfg.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "gridedge-play-"); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
	}
	if err := servePprof(o.pprof, cfg.Logger); err != nil {
		fmt.Fprintf(stderr, "gridedge-sim: %v\n", err)
		return 2
	}
	if _, err := sim.RaiseOpenFiles(200_000); err != nil {
		fmt.Fprintf(stderr, "gridedge-sim: warning: %v\n", err)
	}
	res, err := sim.Play(ctx, sim.PlayConfig{MQTTURL: cfg.MQTTURL, Recording: f, DataDir: dir, Credentials: cfg.Credentials,
		SourceAddrs: cfg.SourceAddrs, Timeout: o.playTimeout, AckTimeout: cfg.AckTimeout, Logger: cfg.Logger})
	if o.result != "" {
		if werr := writeJSON(o.result, res); werr != nil && err == nil {
			err = werr
		}
	}
	rate := 0.0
	if res.Send > 0 {
		rate = float64(res.Readings) / res.Send.Seconds()
	}
	fmt.Fprintf(stdout, "played %d readings of %d devices: loaded in %s, sent and acknowledged in %s (%.0f readings/s), %d unacknowledged\n",
		res.Readings, res.Devices, res.Load.Round(time.Millisecond), res.Send.Round(time.Millisecond), rate, res.Unacked)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
