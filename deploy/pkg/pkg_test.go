package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testSources = Sources{DeployDir: "..", DocsDir: filepath.Join("..", "..", "docs")}

// arMembers splits a Debian package (an ar archive) into its members.
func arMembers(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	const magic = "!<arch>\n"
	if !bytes.HasPrefix(data, []byte(magic)) {
		t.Fatalf("not an ar archive")
	}
	out := map[string][]byte{}
	var order []string
	for p := len(magic); p < len(data); {
		if p+60 > len(data) {
			t.Fatalf("truncated ar header at %d", p)
		}
		hdr := data[p : p+60]
		name := strings.TrimRight(strings.TrimSpace(string(hdr[0:16])), "/")
		size, err := strconv.Atoi(strings.TrimSpace(string(hdr[48:58])))
		if err != nil || p+60+size > len(data) {
			t.Fatalf("bad ar member %q size %q", name, hdr[48:58])
		}
		out[name] = data[p+60 : p+60+size]
		order = append(order, name)
		p += 60 + size + size%2
	}
	if want := "debian-binary,control.tar.gz,data.tar.gz"; strings.Join(order, ",") != want {
		t.Errorf("ar members %v, want %s", order, want)
	}
	return out
}

type tarEntry struct {
	hdr  *tar.Header
	body []byte
}

func untgz(t *testing.T, data []byte) map[string]tarEntry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string]tarEntry{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(h.Name, "./")] = tarEntry{h, body}
	}
}

func controlFields(t *testing.T, control []byte) map[string]string {
	t.Helper()
	fields := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(control))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == ' ' {
			continue // continuation of Description
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			t.Errorf("control line %q has no colon", line)
			continue
		}
		fields[k] = strings.TrimSpace(v)
	}
	return fields
}

func buildTestPackage(t *testing.T, target Target) (path string, binary []byte) {
	t.Helper()
	binDir := t.TempDir()
	binary = []byte("#!/bin/sh\necho gridedge-agent " + target.DebArch + "\n")
	if err := os.WriteFile(filepath.Join(binDir, target.Binary), binary, 0o755); err != nil {
		t.Fatal(err)
	}
	src := testSources
	src.BinDir = binDir
	path, err := Build(src, target, "v1.4.0-3-gabc1234-dirty", t.TempDir(), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return path, binary
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuildArmhfPackage(t *testing.T) {
	path, binary := buildTestPackage(t, DefaultTargets()[0])
	if got, want := filepath.Base(path), "gridedge-agent_1.4.0+3+gabc1234+dirty_armhf.deb"; got != want {
		t.Errorf("file name %q, want %q", got, want)
	}
	ar := arMembers(t, mustRead(t, path))
	if string(ar["debian-binary"]) != "2.0\n" {
		t.Errorf("debian-binary = %q", ar["debian-binary"])
	}

	control := untgz(t, ar["control.tar.gz"])
	fields := controlFields(t, control["control"].body)
	for k, want := range map[string]string{
		"Package":      "gridedge-agent",
		"Version":      "1.4.0+3+gabc1234+dirty",
		"Architecture": "armhf",
		"Section":      "net",
		"Priority":     "optional",
	} {
		if fields[k] != want {
			t.Errorf("control %s = %q, want %q", k, fields[k], want)
		}
	}
	for _, k := range []string{"Maintainer", "Description", "Installed-Size", "Homepage"} {
		if fields[k] == "" {
			t.Errorf("control field %s missing", k)
		}
	}
	if got := strings.TrimSpace(string(control["conffiles"].body)); got != "/etc/gridedge/agent.yaml" {
		t.Errorf("conffiles = %q, want only /etc/gridedge/agent.yaml", got)
	}
	for script, src := range map[string]string{
		"preinst": "preinstall.sh", "postinst": "postinstall.sh", "prerm": "preremove.sh", "postrm": "postremove.sh",
	} {
		e, ok := control[script]
		if !ok {
			t.Errorf("control.tar.gz has no %s", script)
			continue
		}
		if e.hdr.Mode&0o111 == 0 {
			t.Errorf("%s mode %o is not executable", script, e.hdr.Mode)
		}
		if want := mustRead(t, filepath.Join("scripts", src)); !bytes.Equal(e.body, want) {
			t.Errorf("%s differs from scripts/%s", script, src)
		}
	}

	data := untgz(t, ar["data.tar.gz"])
	files := []struct {
		path string
		mode int64
		body []byte
	}{
		{"usr/bin/gridedge-agent", 0o755, binary},
		{"lib/systemd/system/gridedge-agent.service", 0o644, mustRead(t, "../systemd/gridedge-agent.service")},
		{"etc/gridedge/agent.yaml", 0o640, mustRead(t, "../agent.yaml")},
		{"lib/udev/rules.d/60-gridedge.rules", 0o644, mustRead(t, "udev-gridedge.rules")},
		{"usr/share/doc/gridedge-agent/deploy.md", 0o644, mustRead(t, "../../docs/deploy.md")},
		{"usr/share/doc/gridedge-agent/time.md", 0o644, mustRead(t, "../../docs/time.md")},
	}
	for _, f := range files {
		e, ok := data[f.path]
		if !ok {
			t.Errorf("package lacks /%s", f.path)
			continue
		}
		if e.hdr.Mode&0o7777 != f.mode || !bytes.Equal(e.body, f.body) {
			t.Errorf("/%s: mode %o (want %o), content equal %v", f.path, e.hdr.Mode&0o7777, f.mode, bytes.Equal(e.body, f.body))
		}
		if e.hdr.Uname != "root" || !e.hdr.ModTime.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
			t.Errorf("/%s: owner %q mtime %v", f.path, e.hdr.Uname, e.hdr.ModTime)
		}
	}
	dir, ok := data["var/lib/gridedge/"]
	if !ok {
		dir, ok = data["var/lib/gridedge"]
	}
	if !ok || dir.hdr.Typeflag != tar.TypeDir || dir.hdr.Uname != "gridedge" || dir.hdr.Mode&0o7777 != 0o750 {
		t.Errorf("/var/lib/gridedge: present %v, entry %+v", ok, dir.hdr)
	}
}

// TestDpkgDebReadsPackages checks every architecture with the real dpkg
// tools when they are installed.
func TestDpkgDebReadsPackages(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not installed")
	}
	for _, target := range DefaultTargets() {
		path, _ := buildTestPackage(t, target)
		info, err := exec.Command("dpkg-deb", "--info", path).CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg-deb --info: %v\n%s", err, info)
		}
		for _, want := range []string{"Package: gridedge-agent", "Architecture: " + target.DebArch, "preinst", "postinst", "conffiles"} {
			if !bytes.Contains(info, []byte(want)) {
				t.Errorf("%s: dpkg-deb --info lacks %q:\n%s", target.DebArch, want, info)
			}
		}
		list, err := exec.Command("dpkg-deb", "--contents", path).CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg-deb --contents: %v\n%s", err, list)
		}
		for _, want := range []string{"./usr/bin/gridedge-agent", "./etc/gridedge/agent.yaml", "./lib/systemd/system/gridedge-agent.service", "gridedge/gridedge"} {
			if !bytes.Contains(list, []byte(want)) {
				t.Errorf("%s: dpkg-deb --contents lacks %q:\n%s", target.DebArch, want, list)
			}
		}
	}
}

func TestMissingBinary(t *testing.T) {
	src := testSources
	src.BinDir = t.TempDir()
	_, err := Build(src, DefaultTargets()[1], "1.0.0", t.TempDir(), time.Time{})
	if err == nil || !strings.Contains(err.Error(), "make cross") {
		t.Errorf("Build without binary = %v, want an error pointing at make cross", err)
	}
}

func TestDebianVersion(t *testing.T) {
	cases := map[string]string{
		"v1.2.3":                  "1.2.3",
		"1.2.3":                   "1.2.3",
		"v1.2.0-3-gabc1234":       "1.2.0+3+gabc1234",
		"v1.2.0-3-gabc1234-dirty": "1.2.0+3+gabc1234+dirty",
		"0f40435":                 "0f40435",
		"e9e76fb-dirty":           "0.0.0+gite9e76fb+dirty",
		"":                        "0.0.0",
		"1.0 beta/2":              "1.0+beta+2",
	}
	validate := func(string) error { return nil }
	if _, err := exec.LookPath("dpkg"); err == nil {
		validate = func(v string) error {
			if out, err := exec.Command("dpkg", "--validate-version", v).CombinedOutput(); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		}
	}
	for in, want := range cases {
		got := DebianVersion(in)
		if got != want {
			t.Errorf("DebianVersion(%q) = %q, want %q", in, got, want)
		}
		if err := validate(got); err != nil {
			t.Errorf("dpkg rejects %q: %v", got, err)
		}
	}
}

func TestSelectTargets(t *testing.T) {
	all, err := selectTargets("")
	if err != nil || len(all) != 3 {
		t.Fatalf("default targets %v, %v", all, err)
	}
	one, err := selectTargets("arm64")
	if err != nil || len(one) != 1 || one[0].Binary != "gridedge-agent-linux-arm64" {
		t.Errorf("arm64 → %v, %v", one, err)
	}
	if _, err := selectTargets("armel"); err == nil {
		t.Error("unknown architecture accepted")
	}
}

// TestPreinstCreatesAccount runs the real preinst with stub account tools
// and checks what it asks them to do.
func TestPreinstCreatesAccount(t *testing.T) {
	for _, tc := range []struct {
		name     string
		existing bool
		want     []string
	}{
		{"fresh system", false, []string{
			"groupadd --system gridedge",
			"useradd --system --gid gridedge --home-dir /var/lib/gridedge --no-create-home --shell /usr/sbin/nologin --comment gridedge meter agent gridedge",
			"groupadd --system i2c", "groupadd --system spi", "groupadd --system gpio", "groupadd --system dialout",
			"usermod --append --groups i2c,spi,gpio,dialout gridedge",
		}},
		{"account and groups exist", true, []string{
			"usermod --append --groups i2c,spi,gpio,dialout gridedge",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := runScript(t, "preinstall.sh", tc.existing, "install")
			if strings.Join(calls, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
	if calls := runScript(t, "preinstall.sh", false, "abort-upgrade"); len(calls) != 0 {
		t.Errorf("abort-upgrade made calls %v", calls)
	}
}

func TestPostinstOwnsDataAndConfig(t *testing.T) {
	calls := runScript(t, "postinstall.sh", true, "configure", "")
	want := []string{
		"install -d -o gridedge -g gridedge -m 0750 /var/lib/gridedge",
		"chown root:gridedge /etc/gridedge/agent.yaml",
		"chmod 0640 /etc/gridedge/agent.yaml",
	}
	if len(calls) < len(want) || strings.Join(calls[:len(want)], "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant to start with:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
}

// runScript runs a maintainer script under /bin/sh with PATH holding only
// stubs that log their arguments; getent succeeds when existing is true.
func runScript(t *testing.T, script string, existing bool, args ...string) []string {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	stubs := t.TempDir()
	logFile := filepath.Join(stubs, "calls.log")
	getentStatus := "2"
	if existing {
		getentStatus = "0"
	}
	for _, name := range []string{"getent", "groupadd", "useradd", "usermod", "install", "chown", "chmod", "systemctl", "udevadm"} {
		body := fmt.Sprintf("#!/bin/sh\necho \"%s $*\" >> %q\n", name, logFile)
		if name == "getent" {
			body = "#!/bin/sh\nexit " + getentStatus + "\n"
		}
		if err := os.WriteFile(filepath.Join(stubs, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("/bin/sh", append([]string{filepath.Join("scripts", script)}, args...)...)
	cmd.Env = []string{"PATH=" + stubs}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", script, args, err, out)
	}
	b, err := os.ReadFile(logFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var calls []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		calls = append(calls, l)
	}
	return calls
}
