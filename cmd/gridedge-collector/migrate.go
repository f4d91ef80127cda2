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
	"runtime"
	"syscall"

	"github.com/gridedge/gridedge/cloud/collector"
)

// migrate carries a data directory of the release before the partitioned
// log into a new one (collector.Migrate).
func migrate(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("gridedge-collector migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "data directory written by the earlier release (read only)")
	to := fs.String("to", "", "new, empty data directory; start the collector on it afterwards")
	partitions := fs.Int("partitions", runtime.NumCPU(), "readings-log partitions of the new directory")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: gridedge-collector migrate -from OLDDIR -to NEWDIR [-partitions N]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		fs.Usage()
		return errors.New("migrate: -from and -to are required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := collector.Migrate(ctx, *from, *to, *partitions, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "migrated %d devices: %d readings in %d batches, %d statuses, into %s; start the collector with -data-dir %s\n",
		st.Devices, st.Readings, st.Batches, st.Statuses, *to, *to)
	return nil
}
