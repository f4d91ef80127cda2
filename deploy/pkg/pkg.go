package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// PackageName is the Debian package name of the agent.
const PackageName = "gridedge-agent"

// Target is one package to build: a Debian architecture and the
// cross-compiled binary it ships.
type Target struct {
	DebArch string // Debian architecture: armhf, arm64, amd64
	Binary  string // file name in the binary directory
}

// DefaultTargets are the packages `make package` builds. armhf ships the
// ARMv6 build: slower on ARMv7 cores but the only one that runs everywhere.
func DefaultTargets() []Target {
	return []Target{
		{DebArch: "armhf", Binary: "gridedge-agent-linux-armv6"},
		{DebArch: "arm64", Binary: "gridedge-agent-linux-arm64"},
		{DebArch: "amd64", Binary: "gridedge-agent-linux-amd64"},
	}
}

// Sources says where the packaged files come from.
type Sources struct {
	BinDir    string // cross-compiled binaries
	DeployDir string // deploy/: unit, default config, scripts, udev rules
	DocsDir   string // docs/: deploy.md and time.md are shipped as documentation
}

// Build writes the .deb for t into outDir and returns its path. version is
// normalised with DebianVersion; mtime, when non-zero, is stamped on every
// file so builds are reproducible.
func Build(src Sources, t Target, version, outDir string, mtime time.Time) (string, error) {
	bin := filepath.Join(src.BinDir, t.Binary)
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("binary for %s: %w (run make cross first)", t.DebArch, err)
	}
	info := nfpm.WithDefaults(agentInfo(src, t, DebianVersion(version), mtime))
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", fmt.Errorf("prepare %s package: %w", t.DebArch, err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("create output directory: %w", err)
	}
	path := filepath.Join(outDir, deb.Default.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("create package file: %w", err)
	}
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("build %s package: %w", t.DebArch, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

func agentInfo(src Sources, t Target, version string, mtime time.Time) *nfpm.Info {
	scripts := filepath.Join(src.DeployDir, "pkg", "scripts")
	owned := func(mode os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: mtime}
	}
	return &nfpm.Info{
		Name:          PackageName,
		Arch:          t.DebArch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none", // already a valid Debian version
		Section:       "net",
		Priority:      "optional",
		Maintainer:    "gridedge maintainers <ops@gridedge.invalid>",
		Vendor:        "gridedge",
		Homepage:      "https://github.com/gridedge/gridedge",
		Description: "electricity metering gateway agent\n" +
			"Reads power sensors over I2C, SPI, UART and GPIO, stamps every reading\n" +
			"with a sequence number and a time quality, buffers it on disk while the\n" +
			"network is down and forwards it over MQTT to a gridedge collector,\n" +
			"deleting it only once the collector acknowledges it is stored.",
		MTime: mtime,
		Overridables: nfpm.Overridables{
			Contents: files.Contents{
				{Source: filepath.Join(src.BinDir, t.Binary), Destination: "/usr/bin/gridedge-agent", FileInfo: owned(0o755)},
				{Source: filepath.Join(src.DeployDir, "systemd", "gridedge-agent.service"),
					Destination: "/lib/systemd/system/gridedge-agent.service", FileInfo: owned(0o644)},
				// The postinst gives it to group gridedge (it holds the MQTT password).
				{Source: filepath.Join(src.DeployDir, "agent.yaml"), Destination: "/etc/gridedge/agent.yaml",
					Type: files.TypeConfigNoReplace, FileInfo: owned(0o640)},
				{Source: filepath.Join(src.DeployDir, "pkg", "udev-gridedge.rules"),
					Destination: "/lib/udev/rules.d/60-gridedge.rules", FileInfo: owned(0o644)},
				{Source: filepath.Join(src.DocsDir, "deploy.md"), Destination: "/usr/share/doc/gridedge-agent/deploy.md", FileInfo: owned(0o644)},
				{Source: filepath.Join(src.DocsDir, "time.md"), Destination: "/usr/share/doc/gridedge-agent/time.md", FileInfo: owned(0o644)},
				{Destination: "/var/lib/gridedge", Type: files.TypeDir,
					FileInfo: &files.ContentFileInfo{Owner: "gridedge", Group: "gridedge", Mode: 0o750, MTime: mtime}},
			},
			Scripts: nfpm.Scripts{
				PreInstall:  filepath.Join(scripts, "preinstall.sh"),
				PostInstall: filepath.Join(scripts, "postinstall.sh"),
				PreRemove:   filepath.Join(scripts, "preremove.sh"),
				PostRemove:  filepath.Join(scripts, "postremove.sh"),
			},
			Deb: nfpm.Deb{Compression: "gzip"},
		},
	}
}

// DebianVersion turns a version string from git describe into a valid
// Debian version: a leading "v" is dropped, hyphens become "+" (so
// "1.2.0-3-gabc1234-dirty" sorts after "1.2.0"), and a version that does not
// start with a digit (a bare commit hash) becomes "0.0.0+git<hash>".
func DebianVersion(v string) string {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	v = strings.ReplaceAll(v, "-", "+")
	v = strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '.', r == '+', r == '~':
			return r
		}
		return '+'
	}, v)
	if v == "" {
		return "0.0.0"
	}
	if v[0] < '0' || v[0] > '9' {
		return "0.0.0+git" + v
	}
	return v
}

// errNoTargets is returned when a -arch list selects nothing.
var errNoTargets = errors.New("no package targets selected")

// selectTargets picks the targets named in a comma-separated list of Debian
// architectures ("" means all).
func selectTargets(list string) ([]Target, error) {
	if list == "" {
		return DefaultTargets(), nil
	}
	var out []Target
	for _, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		found := false
		for _, t := range DefaultTargets() {
			if t.DebArch == a {
				out, found = append(out, t), true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown architecture %q (armhf, arm64, amd64)", a)
		}
	}
	if len(out) == 0 {
		return nil, errNoTargets
	}
	return out, nil
}
