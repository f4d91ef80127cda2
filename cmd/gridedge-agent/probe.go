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
	"time"

	"github.com/gridedge/gridedge/hardware/host"
	"github.com/gridedge/gridedge/hardware/probe"
)

// probeCmd scans buses for metering hardware so an installer can write the
// channel configuration.
func probeCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gridedge-agent probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	i2c := fs.String("i2c", "all", "comma-separated I²C `buses` to scan (\"1,3\"), \"all\" for every bus found, \"\" for none")
	serial := fs.String("serial", "", "comma-separated serial `ports` to probe for Modbus meters (\"/dev/ttyUSB0,/dev/ttyS0:8E1\")")
	maxAddr := fs.Int("max-addr", 4, "probe Modbus addresses 1..`N` on each serial port")
	timeout := fs.Duration("modbus-timeout", 300*time.Millisecond, "wait per Modbus request")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: gridedge-agent probe [-i2c BUSES] [-serial PORTS] [-max-addr N]\n\n"+
			"Scans I²C buses (read-only) and serial lines for the metering hardware gridedge\n"+
			"supports and prints what it finds with a sample reading, then what it scanned.\n"+
			"Exits 0 when something answered, 1 when nothing did or a bus could not be opened.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h := host.New(log)
	opts := probe.Options{SerialPorts: splitList(*serial), MaxModbusAddress: *maxAddr, ModbusTimeout: *timeout}
	if *i2c == "all" {
		if err := h.Init(); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		opts.I2CBuses = h.I2CBuses()
		if len(opts.I2CBuses) == 0 {
			fmt.Fprintln(stdout, "i2c: no I²C bus on this machine (no /dev/i2c-*: enable I²C, e.g. dtparam=i2c_arm=on in a Raspberry Pi's config.txt, and load i2c-dev)")
		}
	} else {
		opts.I2CBuses = splitList(*i2c)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(opts.SerialPorts) == 0 {
		fmt.Fprintln(stdout, "serial: none probed (give -serial /dev/ttyUSB0 to look for Modbus meters)")
	}
	if err := probe.Probe(ctx, h.Env("", log), opts, stdout); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
