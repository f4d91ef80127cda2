package collector

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/mqtttest"
)

const (
	childEnvBroker = "GRIDEDGE_COLLECTOR_CHILD_BROKER"
	childEnvDir    = "GRIDEDGE_COLLECTOR_CHILD_DIR"
	childEnvCommit = "GRIDEDGE_COLLECTOR_CHILD_COMMIT" // commit interval, optional
)

// TestChildCollector is the body of the child process that
// TestKillDuringIngest kills; it does nothing in a normal test run.
func TestChildCollector(t *testing.T) {
	url, dir := os.Getenv(childEnvBroker), os.Getenv(childEnvDir)
	if url == "" || dir == "" {
		t.Skip("only runs as the child of TestKillDuringIngest")
	}
	cfg := testConfig(t, url, dir)
	if d, err := time.ParseDuration(os.Getenv(childEnvCommit)); err == nil {
		cfg.CommitInterval = d
	}
	c, err := New(cfg, WithLogger(testLogger(t)))
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Printf("HTTP %s\n", c.HTTPAddr())
	if err := c.Run(context.Background()); err != nil { // runs until killed
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
}

type child struct {
	cmd  *exec.Cmd
	addr string
}

func startChild(t *testing.T, brokerURL, dir string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildCollector$", "-test.v")
	cmd.Env = append(os.Environ(), childEnvBroker+"="+brokerURL, childEnvDir+"="+dir)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := &child{cmd: cmd}
	t.Cleanup(func() { ch.kill() })
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if addr, ok := strings.CutPrefix(lines.Text(), "HTTP "); ok {
			ch.addr = addr
			break
		}
		if strings.HasPrefix(lines.Text(), "ERROR") {
			t.Fatalf("child: %s", lines.Text())
		}
	}
	if ch.addr == "" {
		t.Fatal("child exited without serving HTTP")
	}
	go func() { // keep draining so the child never blocks on stdout
		for lines.Scan() {
		}
	}()
	return ch
}

func (c *child) kill() {
	if c.cmd.ProcessState == nil {
		_ = c.cmd.Process.Kill() // SIGKILL: no shutdown code runs
		_ = c.cmd.Wait()
	}
}

// TestKillDuringIngest kills a collector process with SIGKILL while batches
// stream in, restarts it on the same store and broker session, and checks that
// every reading is stored exactly once and the windows equal a direct
// computation, even after the agent resends everything.
func TestKillDuringIngest(t *testing.T) {
	if os.Getenv(childEnvBroker) != "" {
		t.Skip("child process")
	}
	b := mqtttest.Start(t)
	dir := t.TempDir()
	const batches, perBatch = 120, 50
	const total = batches * perBatch

	first := startChild(t, b.URL(), dir)
	waitFor(t, "child health", func() bool { return healthy(first.addr) })
	ag := newAgent(t, b.URL(), "agent-crash", nil)
	for i := 0; i < batches; i++ {
		ag.publish("s", "dev-1", encode(t, makeBatch("dev-1", 5, uint64(i*perBatch), perBatch)))
		if i == batches/3 {
			// Let ingest get going, then kill it mid-stream.
			waitFor(t, "ingest under way", func() bool { return readingsStoredOrZero(first.addr, "dev-1") > 0 })
			first.kill()
		}
	}

	second := startChild(t, b.URL(), dir)
	// The broker redelivers what the killed process had not PUBACKed and
	// everything queued for the persistent session meanwhile.
	waitFor(t, "all readings after restart", func() bool { return readingsStoredOrZero(second.addr, "dev-1") >= total })
	acksBefore := ag.ackCount()
	// The agent resends every batch (it may have lost acks in the crash).
	for i := 0; i < batches; i++ {
		ag.publish("s", "dev-1", encode(t, makeBatch("dev-1", 5, uint64(i*perBatch), perBatch)))
	}
	waitFor(t, "acks for every resent batch", func() bool { return ag.ackCount() >= acksBefore+batches })

	var out struct{ Devices []deviceJSON }
	getJSON(t, "http://"+second.addr+"/api/v1/devices", &out)
	if len(out.Devices) != 1 || out.Devices[0].ReadingsStored != total {
		t.Fatalf("after kill, restart and resend: %+v, want exactly %d readings", out.Devices, total)
	}
	all := makeBatch("dev-1", 5, 0, total).Readings
	checkWindows(t, second.addr, "dev-1", all, time.Minute)
	checkWindows(t, second.addr, "dev-1", all, 5*time.Minute)
	// The engine's results (restored from its checkpoint and the log
	// replayed after it) equal one uninterrupted pass over the readings.
	cfg := testConfig(t, b.URL(), dir)
	waitForResults(t, second.addr, "dev-1", cfg.Pipelines, uninterrupted(t, cfg, "dev-1", 5, all))
}

func healthy(addr string) bool {
	resp, err := httpClient.Get("http://" + addr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

func readingsStoredOrZero(addr, device string) uint64 {
	var out struct{ Devices []deviceJSON }
	resp, err := httpClient.Get("http://" + addr + "/api/v1/devices")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if err := jsonDecode(resp.Body, &out); err != nil {
		return 0
	}
	for _, d := range out.Devices {
		if d.ID == device {
			return d.ReadingsStored
		}
	}
	return 0
}

// TestEngineSurvivesRepeatedKills SIGKILLs the collector three times while
// batches stream in. Until the last round the engine commits only at start
// (its commit interval is an hour and fewer than 20,000 readings arrive), so
// every kill loses all the worker's work of its round, and every restart must
// restore the stored state and re-read the readings log after its offset. The results after the
// last restart must equal one uninterrupted pass over the readings.
func TestEngineSurvivesRepeatedKills(t *testing.T) {
	if os.Getenv(childEnvBroker) != "" {
		t.Skip("child process")
	}
	b := mqtttest.Start(t)
	dir := t.TempDir()
	const rounds, perRound, perBatch = 4, 30, 40
	ag := newAgent(t, b.URL(), "agent-kills", nil)
	for round := range rounds {
		env := []string{childEnvCommit + "=1h"}
		if round == rounds-1 {
			env = nil
		}
		c := startChild(t, b.URL(), dir, env...)
		waitFor(t, "child health", func() bool { return healthy(c.addr) })
		for i := range perRound {
			n := round*perRound + i
			ag.publish("s", "dev-1", encode(t, makeBatch("dev-1", 5, uint64(n*perBatch), perBatch)))
		}
		if round < rounds-1 {
			// Every batch of the round is in the readings log (acked), and
			// the worker has committed nothing since its start.
			waitFor(t, "the round's acks", func() bool { return ag.ackCount() >= (round+1)*perRound })
			c.kill()
			continue
		}
		total := uint64(rounds * perRound * perBatch)
		waitFor(t, "every reading", func() bool { return readingsStoredOrZero(c.addr, "dev-1") >= total })
		all := makeBatch("dev-1", 5, 0, int(total)).Readings
		cfg := testConfig(t, b.URL(), dir)
		waitForResults(t, c.addr, "dev-1", cfg.Pipelines, uninterrupted(t, cfg, "dev-1", 5, all))
	}
}
