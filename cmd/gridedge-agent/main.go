// Command gridedge-agent runs the gridedge edge agent on a gateway: it
// samples the configured sensors, buffers readings durably and forwards them
// to the collector over MQTT.
//
//	gridedge-agent -config /etc/gridedge/agent.yaml
//	gridedge-agent status -config /etc/gridedge/agent.yaml
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
	"strings"
	"syscall"

	"github.com/gridedge/gridedge/edge/agent"
	"github.com/gridedge/gridedge/edge/clock"
	"github.com/gridedge/gridedge/edge/config"
	"github.com/gridedge/gridedge/edge/sdnotify"
	"github.com/gridedge/gridedge/edge/sim/household"
	"github.com/gridedge/gridedge/hardware/host"
	hwregistry "github.com/gridedge/gridedge/hardware/registry"
	"github.com/gridedge/gridedge/hardware/sensor"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "status":
			return statusCmd(args[1:], stdout, stderr)
		case "probe":
			return probeCmd(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("gridedge-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/gridedge/agent.yaml", "agent configuration `file` (YAML)")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn, error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	checkOnly := fs.Bool("check", false, "validate the configuration (fields, placeholders, drivers and their options) without opening any bus, and exit: 0 when valid")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: gridedge-agent [-config FILE] [-log-level LEVEL]\n"+
			"       gridedge-agent status [-config FILE] [-json]\n"+
			"       gridedge-agent probe [-i2c BUSES] [-serial PORTS]\n\n"+
			"Samples the configured sensors, buffers readings durably and forwards them\n"+
			"to the collector over MQTT. Sensor drivers: %v\n\nFlags:\n", registry().Names())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, version)
		return 0
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "-log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if *checkOnly {
		return checkConfig(cfg, *cfgPath, stdout, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h := host.New(log)
	env := h.Env("", log)
	src, closeRTC, err := systemClock(cfg, env, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	defer closeRTC()
	a, err := agent.New(cfg, agent.WithRegistry(registry()), agent.WithLogger(log), agent.WithVersion(version),
		agent.WithSensorEnv(env), agent.WithClock(src))
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	log.Info("gridedge-agent running", "version", version, "device", cfg.DeviceID, "site", cfg.Site,
		"channels", a.Channels(), "seq_epoch", fmt.Sprintf("%016x", a.SeqEpoch()))

	// systemd (Type=notify, WatchdogSec): ready once the buffer is open and
	// every sensor built; keep-alives only while the pipeline makes progress.
	sd := sdnotify.New()
	watchdogCtx, stopWatchdog := context.WithCancel(ctx)
	watchdogDone := make(chan struct{})
	go func() {
		defer close(watchdogDone)
		if err := sd.RunWatchdog(watchdogCtx, a.Healthy); err != nil {
			log.Warn("systemd watchdog", "err", err)
		}
	}()
	if err := sd.Ready(); err != nil {
		log.Warn("systemd notify", "err", err)
	}
	err = a.Run(ctx)
	_ = sd.Stopping()
	stopWatchdog()
	<-watchdogDone
	if err != nil {
		log.Error("agent stopped", "err", err)
		return 1
	}
	log.Info("gridedge-agent stopped")
	return 0
}

// checkConfig validates what only the drivers know, without opening any
// bus: unknown drivers, unknown or malformed options, out-of-range values
// (an I²C address the chip cannot have, a negative shunt), quantities a
// driver cannot measure. Each problem is one line naming the field.
func checkConfig(cfg config.Config, path string, stdout, stderr io.Writer) int {
	reg := registry()
	bad := false
	for i, sc := range cfg.SensorConfigs() {
		err := reg.Check(sc)
		if err == nil {
			continue
		}
		bad = true
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "config %s: channels[%d].%s\n", path, i, line)
		}
	}
	if bad {
		return 2
	}
	fmt.Fprintf(stdout, "config %s: ok (%d channels)\n", path, len(cfg.Channels))
	return 0
}

// registry holds every hardware driver this build supports.
func registry() *sensor.Registry {
	r := sensor.NewRegistry()
	hwregistry.Register(r)
	r.Register(household.Driver())
	return r
}

// systemClock builds the kernel-backed clock, with the DS3231 when the
// configuration names its bus. An RTC that cannot be opened is logged and
// left out: the agent still runs, its readings marked estimated until NTP
// syncs.
func systemClock(cfg config.Config, env sensor.Env, log *slog.Logger) (*clock.System, func(), error) {
	opts := []clock.Option{clock.WithLogger(log)}
	closeRTC := func() {}
	if cfg.Clock.RTCBus != "" {
		rtc, err := hwregistry.OpenRTC(env, cfg.Clock.RTCBus)
		if err != nil {
			log.Warn("clock.rtc_i2c_bus: RTC not available, continuing without it", "bus", cfg.Clock.RTCBus, "err", err)
		} else {
			opts = append(opts, clock.WithRTC(rtc))
			closeRTC = func() { _ = rtc.Close() }
		}
	}
	src, err := clock.NewSystem(opts...)
	if err != nil {
		closeRTC()
		return nil, nil, fmt.Errorf("clock: %w", err)
	}
	return src, closeRTC, nil
}
