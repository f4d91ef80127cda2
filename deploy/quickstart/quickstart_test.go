package quickstart

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/poll"
)

// repoRoot is the repository, two levels up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binaries and runs them: not in -short")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// block is one fenced code block of a Markdown file.
type block struct {
	info string // the info string after ```
	line int    // line of the opening fence
	text string
}

// fencedBlocks returns the fenced code blocks of the Markdown in path.
func fencedBlocks(t *testing.T, path string) []block {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []block
	var cur *block
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &block{info: strings.TrimSpace(strings.TrimPrefix(line, "```")), line: n}
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s: block opened at line %d is not closed", path, cur.line)
	}
	return out
}

// runnable returns the text of the blocks whose info string is "sh " +
// marker, each preceded by a comment naming its line.
func runnable(t *testing.T, marker string) string {
	t.Helper()
	var b strings.Builder
	n := 0
	for _, bl := range fencedBlocks(t, filepath.Join(repoRoot(t), "README.md")) {
		if f := strings.Fields(bl.info); len(f) == 2 && f[0] == "sh" && f[1] == marker {
			fmt.Fprintf(&b, "# README.md line %d\n%s", bl.line, bl.text)
			n++
		}
	}
	if n == 0 {
		t.Fatalf("README.md has no block marked ```sh %s", marker)
	}
	return b.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// rewrite adapts README commands to the test: free ports, make in the
// repository building into bin, curl failing on HTTP errors.
func rewrite(script, repo, bin, httpAddr, mqttAddr string) string {
	return strings.NewReplacer(
		"127.0.0.1:8080", httpAddr,
		"127.0.0.1:1883", mqttAddr,
		"make ", fmt.Sprintf("make -C %q BIN=%q ", repo, bin),
		"curl -s ", "curl -sSf --max-time 30 ",
	).Replace(script)
}

func TestReadmeRunnableBlocks(t *testing.T) {
	need(t, "bash", "make", "curl", "go")
	repo := repoRoot(t)
	work := t.TempDir()
	for _, d := range []string{"edge", "deploy", "testdata"} {
		if err := os.Symlink(filepath.Join(repo, d), filepath.Join(work, d)); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(work, "bin")
	script := "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" +
		rewrite(runnable(t, "runnable"), repo, bin, "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = work
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README.md's runnable blocks failed: %v\n--- script ---\n%s\n--- output ---\n%s", err, script, out)
	}
	// The blocks stop what they start (kill %1 && wait): nothing is left.
	if err := syscall.Kill(-cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("processes of the README's blocks still running after them (kill -0: %v)", err)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	for _, want := range []string{`"sim-0001"`, `"replay-0001"`, "ok (2 channels)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}

// make demo serves, the README's demo curls work against it, and Ctrl-C
// (SIGINT to its process group, as a terminal sends it) stops everything
// cleanly: exit 0, no error from make, nothing left running. A second
// make demo on the same directory continues it: the meters go on after
// what they sampled, so no energy counter appears reset and no reading
// conflicts with a stored one.
func TestMakeDemoStopsCleanly(t *testing.T) {
	need(t, "bash", "make", "curl", "go")
	repo := repoRoot(t)
	work := t.TempDir()
	httpAddr, mqttAddr := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
	args := []string{"-C", repo, "demo", "BIN=" + filepath.Join(work, "bin"),
		"DEMO_HTTP=" + httpAddr, "DEMO_MQTT=" + mqttAddr, "DEMO_DIR=" + filepath.Join(work, "demo")}

	stored := func() uint64 {
		var out struct {
			Devices []struct {
				ID             string
				ReadingsStored uint64 `json:"readings_stored"`
				Conflicts      uint64
			}
		}
		getJSON(t, "http://"+httpAddr+"/api/v1/devices", &out)
		n := uint64(0)
		for _, d := range out.Devices {
			n += d.ReadingsStored
			if d.Conflicts != 0 {
				t.Fatalf("second make demo: %s has %d conflicting readings", d.ID, d.Conflicts)
			}
		}
		return n
	}

	stop := startDemo(t, httpAddr, args)
	poll.Until(t, 2*time.Minute, "the first make demo's readings to be stored", func() bool { return stored() > 10_000 })
	curls := rewrite(runnable(t, "runnable=demo"), repo, filepath.Join(work, "bin"), httpAddr, mqttAddr)
	if b, err := exec.Command("bash", "-c", "set -euo pipefail\n"+curls).CombinedOutput(); err != nil {
		t.Errorf("README.md's demo blocks failed against make demo: %v\n%s\n%s", err, curls, b)
	}
	stop()

	stop = startDemo(t, httpAddr, args)
	before := stored()
	poll.Until(t, 2*time.Minute, "the second make demo's readings to be stored", func() bool { return stored() > before+10_000 })
	var res struct {
		Results []struct {
			Start         time.Time
			CounterResets int `json:"counter_resets"`
		}
	}
	getJSON(t, "http://"+httpAddr+"/api/v1/results?pipeline=energy_15m&device=sim-0001&channel=mains&quantity=energy&limit=100000", &res)
	if len(res.Results) == 0 {
		t.Fatal("no quarter-hour energy of the mains counter")
	}
	for _, r := range res.Results {
		if r.CounterResets != 0 {
			t.Fatalf("second make demo: the quarter hour at %v saw %d counter resets", r.Start, r.CounterResets)
		}
	}
	text := stop()
	if !strings.Contains(text, "gridedge demo: continuing") {
		t.Errorf("the second make demo did not continue the first:\n%s", text)
	}
}

// startDemo runs make with args until its API answers and returns the
// function that interrupts it as Ctrl-C does, checks it stopped cleanly,
// and returns its output.
func startDemo(t *testing.T, httpAddr string, args []string) (stop func() string) {
	t.Helper()
	cmd := exec.Command("make", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out syncBuilder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })

	poll.For(t, 5*time.Minute, "the demo's API", func() (int, error) {
		select {
		case err := <-exited:
			t.Fatalf("make demo exited early (%v):\n%s", err, out.String())
		default:
		}
		resp, err := http.Get("http://" + httpAddr + "/api/v1/devices")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}, func(code int) bool { return code == http.StatusOK })

	return func() string {
		t.Helper()
		if err := syscall.Kill(-pgid, syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		var err error
		select {
		case err = <-exited:
		case <-time.After(2 * time.Minute):
			t.Fatalf("make demo still running 2 minutes after Ctrl-C:\n%s", out.String())
		}
		text := out.String()
		// make passes the interrupt on by ending itself with SIGINT once its
		// recipe has finished (a shell prints nothing for that); anything else
		// is a failure.
		var exit *exec.ExitError
		if err != nil && !(errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signal() == syscall.SIGINT) {
			t.Errorf("make demo after Ctrl-C: %v", err)
		}
		for _, bad := range []string{"Segmentation fault", "make: ***", "Error", "panic"} {
			if strings.Contains(text, bad) {
				t.Errorf("make demo's output has %q after Ctrl-C:\n%s", bad, text)
			}
		}
		if !strings.Contains(text, "gridedge demo: stopped") {
			t.Errorf("make demo did not say it stopped:\n%s", text)
		}
		poll.Until(t, 30*time.Second, "every process of make demo to exit", func() bool {
			return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
		})
		return text
	}
}

// syncBuilder is a strings.Builder safe for a process's output and the test.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
