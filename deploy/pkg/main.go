package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pkg:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("pkg", flag.ContinueOnError)
	binDir := fs.String("bin", "bin", "directory with the cross-compiled agent binaries")
	deployDir := fs.String("deploy", "deploy", "deploy directory (unit, config, scripts)")
	docsDir := fs.String("docs", "docs", "docs directory (deploy.md, time.md)")
	outDir := fs.String("out", "dist", "output directory for the .deb files")
	version := fs.String("version", "0.0.0", "package version (git describe output is accepted)")
	arches := fs.String("arch", "", "comma-separated Debian architectures to build (default armhf,arm64,amd64)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	targets, err := selectTargets(*arches)
	if err != nil {
		return err
	}
	// SOURCE_DATE_EPOCH makes the packages reproducible.
	var mtime time.Time
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		mtime = time.Unix(sec, 0).UTC()
	}
	src := Sources{BinDir: *binDir, DeployDir: *deployDir, DocsDir: *docsDir}
	for _, t := range targets {
		path, err := Build(src, t, *version, *outDir, mtime)
		if err != nil {
			return err
		}
		slog.Info("package built", "arch", t.DebArch, "binary", t.Binary, "path", path)
	}
	return nil
}
