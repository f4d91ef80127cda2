package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/gridedge/gridedge/edge/config"
	"github.com/gridedge/gridedge/edge/status"
)

// statusCmd prints the running agent's local state from state_dir/status.json.
// Exit codes: 0 running, 1 not running (stale or missing status), 2 usage or
// configuration error.
func statusCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gridedge-agent status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/gridedge/agent.yaml", "agent configuration `file` (its state_dir holds status.json)")
	asJSON := fs.Bool("json", false, "print the status as JSON")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: gridedge-agent status [-config FILE] [-json]\n\n"+
			"Prints buffer depth, oldest unsent reading, clock quality, per-channel sensor\n"+
			"errors and delivery counters from the status file the running agent rewrites\n"+
			"every status_interval. Exits 1 when the agent is not running.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	snap, err := status.Read(cfg.StateDir)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	now := time.Now()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(snap); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	} else {
		snap.Format(stdout, now)
	}
	if snap.Stale(now) {
		return 1
	}
	return 0
}
