package local

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/gridedge/gridedge/cloud/readlog"
)

const (
	crashDirEnv   = "GRIDEDGE_READLOG_CRASH_DIR"
	crashRoundEnv = "GRIDEDGE_READLOG_CRASH_ROUND"
	crashParts    = 4
	crashRecBytes = 1800
)

// TestCrashChild is the child process of TestKill9KeepsEveryAcknowledgedRecord:
// eight goroutines append until the process is killed, printing
// "ack <partition> <offset> <id>" for each acknowledged record.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestKill9KeepsEveryAcknowledgedRecord")
	}
	l, err := Open(dir, quiet(), WithPartitions(crashParts), WithSegmentBytes(256<<10))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("%s-g%d-%d", os.Getenv(crashRoundEnv), g, i)
				p := readlog.PartitionFor([]byte(id), crashParts)
				err := l.Append(context.Background(), p, []byte(id), value(id, crashRecBytes), func(off int64, err error) {
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						fmt.Fprintln(out, "error", err)
					} else {
						fmt.Fprintln(out, "ack", p, off, id)
					}
					out.Flush()
				})
				if err != nil {
					mu.Lock()
					fmt.Fprintln(out, "error", err)
					out.Flush()
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	os.Exit(1)
}

func TestKill9KeepsEveryAcknowledgedRecord(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	dir := t.TempDir()
	var acks ackLog
	for round := range 2 { // the second round recovers the first's files
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, fmt.Sprintf("%s=r%d", crashRoundEnv, round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		in := bufio.NewReader(stdout)
		n, killed := 0, false
		for {
			line, err := in.ReadString('\n')
			if err == io.EOF {
				break // a partial last line was cut by the kill
			}
			if err != nil {
				t.Fatal(err)
			}
			var p int
			var off int64
			var id string
			if _, err := fmt.Sscan(line, new(string), &p, &off, &id); err != nil || !strings.HasPrefix(line, "ack ") {
				cmd.Process.Kill()
				t.Fatalf("child: %s", line)
			}
			if err := acks.add(p, off, id); err != nil {
				t.Fatal(err)
			}
			if n++; n == 3000 && !killed {
				cmd.Process.Signal(syscall.SIGKILL)
				killed = true
			}
		}
		cmd.Wait()
		if !killed {
			t.Fatalf("round %d: child stopped after %d acknowledgements", round, n)
		}
	}
	l := openLog(t, dir)
	seen := map[string]bool{}
	total := 0
	for p := range crashParts {
		recs := readRange(t, l, p, 0, end(l, p)) // checks offsets are contiguous
		for _, r := range recs {
			if seen[r.key] {
				t.Fatalf("record %s stored twice", r.key)
			}
			seen[r.key] = true
			if r.value != string(value(r.key, crashRecBytes)) {
				t.Fatalf("record %s at %d/%d holds a wrong value", r.key, p, r.off)
			}
		}
		total += len(recs)
	}
	checkAcked(t, l, acks.acks, crashRecBytes)
	acked := 0
	for _, m := range acks.acks {
		acked += len(m)
	}
	t.Logf("%d records acknowledged before the kills, %d stored", acked, total)
}
