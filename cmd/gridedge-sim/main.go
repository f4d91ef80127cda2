// Command gridedge-sim runs many virtual meters through the real agent
// pipeline against a broker, on simulated time, and exits 0 only when
// every generated reading was acknowledged end to end by the collector.
//
//	gridedge-sim -mqtt-url tcp://127.0.0.1:1883 -meters 50 -duration 24h -speed 1440 -truth truth.csv
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gridedge/gridedge/edge/sim"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gridedge-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg sim.Config
	fs.StringVar(&cfg.MQTTURL, "mqtt-url", "tcp://127.0.0.1:1883", "broker `URL` the virtual meters publish to")
	fs.StringVar(&cfg.Site, "site", "sim", "site `name` in the meters' topics (gridedge/v1/<site>/<device>/...)")
	fs.IntVar(&cfg.Meters, "meters", 1, "number of virtual meters; each is a full agent with its own device id (sim-0001, ...), buffer and MQTT session")
	fs.StringVar(&cfg.DevicePrefix, "device-prefix", "sim-", "device id `prefix`; ids are prefix0001, prefix0002, ...")
	fs.DurationVar(&cfg.Duration, "duration", 24*time.Hour, "simulated `time` to sample; for -profile replay, 0 plays the whole file")
	fs.Float64Var(&cfg.Speed, "speed", 1440, "simulated seconds per real second (1440: a simulated day in one real minute)")
	fs.StringVar(&cfg.Profile, "profile", sim.ProfileHousehold, "`household` (synthetic home: base load, fridge, kettle, oven, washer, water heater; channels mains+energy, sub1..sub3) or replay (the real UCI household file, one reading per file minute)")
	fs.StringVar(&cfg.ReplayFile, "replay-file", sim.DefaultReplayFile, "UCI household CSV `file` for -profile replay")
	truthPath := fs.String("truth", "", "write every generated reading to this CSV `file` (device,channel,quantity,seq_epoch,seq,time,value)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "`directory` for the meters' buffers and state (default: a temporary directory, removed at exit)")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", 2*time.Minute, "after sampling ends, how long (real `time`) to wait for every reading to be acked before giving up")
	fs.DurationVar(&cfg.Interval, "interval", 10*time.Second, "household sampling interval in simulated `time` (replay always samples once per file minute)")
	fs.Int64Var(&cfg.Seed, "seed", 1, "household profile `seed`: the same seed gives the same loads")
	startStr := fs.String("start", "", "simulated start, RFC 3339 (household; default: -duration before now, so the run ends at the present)")
	fs.DurationVar(&cfg.AckTimeout, "ack-timeout", 10*time.Second, "resend a batch the collector has not acked within this real `time`")
	verbose := fs.Bool("v", false, "log each meter's connection events")
	credentials := fs.String("credentials", "", "MQTT credentials `file`: lines \"<site>/<device_id> <secret>\"; each meter connects as that user with client id = user")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: gridedge-sim [flags]\n\n"+
			"Runs virtual meters through the real agent pipeline (sensor → sampler → Badger\n"+
			"buffer → MQTT publisher). When -duration of simulated time has been sampled it\n"+
			"waits until the collector has acknowledged every reading and exits 0; after\n"+
			"-drain-timeout it prints the unacknowledged readings per meter and exits 1.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %v\n", fs.Args())
		return 2
	}
	if *startStr != "" {
		t, err := time.Parse(time.RFC3339, *startStr)
		if err != nil {
			fmt.Fprintf(stderr, "-start: %v\n", err)
			return 2
		}
		cfg.Start = t
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if *credentials != "" {
		var err error
		if cfg.Credentials, err = sim.ReadCredentials(*credentials); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
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
	var truthFile *os.File
	if *truthPath != "" {
		f, err := os.Create(*truthPath)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		truthFile = f
		cfg.Truth = f
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	began := time.Now()
	res, err := sim.Run(ctx, cfg)
	if truthFile != nil {
		if cerr := truthFile.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	fmt.Fprintf(stdout, "simulated %s .. %s: %d meters, %d readings generated, %d unacknowledged, %s real time\n",
		res.SimStart.Format(time.RFC3339), res.SimEnd.Format(time.RFC3339), len(res.Meters), res.Generated, res.Unacked,
		time.Since(began).Round(time.Millisecond))
	if res.Missing > 0 {
		fmt.Fprintf(stdout, "replay skipped %d missing (?) values\n", res.Missing)
	}
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
