package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// peakRSS is the process's VmHWM (peak resident set), bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// A 50 MB MQTT payload and eight concurrent requests for ten thousand dead
// letters (forty megabytes of payloads on disk) keep the collector process
// under its memory ceiling: the broker refuses the packet before it is
// read, dead letters are listed without payloads and streamed.
func TestMemoryStaysUnderTheCeiling(t *testing.T) {
	if os.Getenv(mainArgsEnv) != "" {
		t.Skip("child")
	}
	const ceiling = 192 << 20
	dir := t.TempDir()
	addrFile := filepath.Join(dir, "http.addr")
	mqttAddr := freeAddr(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainProcess$")
	cmd.Env = append(os.Environ(), mainArgsEnv+"=-embedded-broker "+mqttAddr+" -allow-anonymous -http-addr 127.0.0.1:0 -data-dir "+
		filepath.Join(dir, "data")+" -http-addr-file "+addrFile+" -memory-limit-bytes "+strconv.Itoa(ceiling*3/4)+" -partitions 2")
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var addr string
	deadline := time.Now().Add(60 * time.Second)
	for addr == "" {
		if b, err := os.ReadFile(addrFile); err == nil {
			addr = strings.TrimSpace(string(b))
		} else if time.Now().After(deadline) {
			t.Fatal("no address file")
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	get := func(path string) (int, int64) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Error(err)
			return 0, 0
		}
		defer resp.Body.Close()
		n, _ := io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, n
	}
	for code, _ := get("/healthz"); code != 200; code, _ = get("/healthz") {
		if time.Now().After(deadline) {
			t.Fatal("collector not healthy")
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := peakRSS(t, cmd.Process.Pid)

	// 200 garbage payloads of 200 KiB: dead-lettered with their bytes.
	cl := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + mqttAddr).SetClientID("flooder").SetCleanSession(true))
	if tok := cl.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	junk := make([]byte, 200<<10)
	for i := range junk {
		junk[i] = 0xff
	}
	const letters = 200
	for i := range letters {
		tok := cl.Publish(fmt.Sprintf("gridedge/v1/s/dev-%d/data", i%10), 1, false, junk)
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	cl.Disconnect(100)
	metrics := func() string {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for !strings.Contains(metrics(), fmt.Sprintf(`gridedge_collector_deadletters_total{reason="malformed"} %d`, letters)) {
		if time.Now().After(deadline.Add(time.Minute)) {
			t.Fatal("dead letters not all kept")
		}
		time.Sleep(50 * time.Millisecond)
	}
	afterLetters := peakRSS(t, cmd.Process.Pid)

	// A 50 MB payload: the embedded broker's packet limit (256 KiB) closes
	// the connection.
	big := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + mqttAddr).SetClientID("big").SetCleanSession(true).SetAutoReconnect(false))
	if tok := big.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	tok := big.Publish("gridedge/v1/s/big/data", 1, false, make([]byte, 50<<20))
	tok.WaitTimeout(30 * time.Second)
	big.Disconnect(100)

	// Eight concurrent requests for 10,000 dead letters, and eight for one
	// payload each, at once.
	var wg sync.WaitGroup
	var listed [8]int64
	for i := range 8 {
		wg.Go(func() {
			code, n := get("/api/v1/deadletters?limit=10000")
			if code != 200 && code != 503 {
				t.Errorf("dead letters: status %d", code)
			}
			listed[i] = n
		})
		wg.Go(func() {
			if code, _ := get(fmt.Sprintf("/api/v1/deadletters/%d", 1+i)); code != 200 && code != 503 {
				t.Errorf("dead letter %d: status %d", 1+i, code)
			}
		})
	}
	wg.Wait()
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("collector unhealthy after the flood: %d", code)
	}
	peak := peakRSS(t, cmd.Process.Pid)
	t.Logf("peak RSS: %d MiB healthy, %d MiB after %d dead letters of 200 KiB, %d MiB after the 50 MB payload and 16 concurrent dead-letter requests (answers of %d bytes); ceiling %d MiB",
		start>>20, afterLetters>>20, letters, peak>>20, listed[0], ceiling>>20)
	if peak > ceiling {
		t.Fatalf("peak RSS %d MiB above the %d MiB ceiling", peak>>20, ceiling>>20)
	}
}
