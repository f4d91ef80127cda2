package buffer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/wire"
)

// syncEvery is how many appends the child makes between explicit syncs: the
// "sync period" of this test, expressed in readings so the bound does not
// depend on timing.
const syncEvery = 50

// TestCrashChild is the child process of TestKill9LosesAtMostOneSyncPeriod.
// It appends readings forever, reporting each append and each completed
// sync on stdout, until it is killed.
func TestCrashChild(t *testing.T) {
	dir, state := os.Getenv("GRIDEDGE_CRASH_BUF"), os.Getenv("GRIDEDGE_CRASH_STATE")
	if dir == "" {
		t.Skip("child process of TestKill9LosesAtMostOneSyncPeriod")
	}
	// The periodic sync is off (an hour): only the explicit syncs count.
	b, err := Open(dir, state, WithBackend(Backend(os.Getenv("GRIDEDGE_CRASH_BACKEND"))), WithSyncInterval(time.Hour), WithReserve(100))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		r := &wire.Reading{Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: float64(i),
			WallNs: time.Now().UnixNano(), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED}
		if err := b.Append("boot", r); err != nil {
			fmt.Fprintln(out, "error", err)
			out.Flush()
			os.Exit(1)
		}
		fmt.Fprintln(out, "appended", r.Seq)
		if (i+1)%syncEvery == 0 {
			if err := b.Sync(); err != nil {
				fmt.Fprintln(out, "error", err)
				out.Flush()
				os.Exit(1)
			}
			fmt.Fprintln(out, "synced", r.Seq)
		}
		out.Flush()
	}
}

// startChild re-executes the test binary as TestCrashChild. Under qemu-user
// without binfmt_misc (GOARCH=arm go test -exec qemu-arm-static) the binary
// cannot be executed directly; it is then run through the same emulator.
func startChild(t *testing.T, env ...string) (*exec.Cmd, io.Reader) {
	t.Helper()
	args := []string{os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1"}
	for attempt := 0; ; attempt++ {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), env...)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		err = cmd.Start()
		if err == nil {
			return cmd, stdout
		}
		emu := map[string]string{"arm": "qemu-arm-static", "arm64": "qemu-aarch64-static"}[runtime.GOARCH]
		if attempt > 0 || !errors.Is(err, syscall.ENOEXEC) || emu == "" {
			t.Fatal(err)
		}
		args = append([]string{emu}, args...)
	}
}

func TestKill9LosesAtMostOneSyncPeriod(t *testing.T) {
	forEachBackend(t, testKill9LosesAtMostOneSyncPeriod)
}

func testKill9LosesAtMostOneSyncPeriod(t *testing.T, bk Backend) {
	root := t.TempDir()
	dir, state := filepath.Join(root, "buf"), filepath.Join(root, "state")
	cmd, stdout := startChild(t, "GRIDEDGE_CRASH_BUF="+dir, "GRIDEDGE_CRASH_STATE="+state, "GRIDEDGE_CRASH_BACKEND="+string(bk))
	var synced, appended uint64
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "error" {
			t.Fatalf("child: %s", sc.Text())
		}
		if len(f) != 2 {
			continue
		}
		n, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "appended":
			appended = n
		case "synced":
			synced = n
		}
		if synced >= 1000 {
			break
		}
	}
	if synced < 1000 {
		t.Fatalf("child stopped early (synced %d): %v", synced, sc.Err())
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no Close, no final sync
		t.Fatal(err)
	}
	_ = cmd.Wait()

	b := openOn(t, bk, dir, state)
	defer b.Close()
	rec := b.Recovery()
	if !rec.Unclean {
		t.Fatal("kill -9 not reported as an unclean stop")
	}
	recs, err := b.Read(0, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	// What survives is a gap-free prefix 1..K holding everything synced.
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("hole at seq %d (found %d)", i+1, r.Seq)
		}
	}
	k := uint64(len(recs))
	if k < synced {
		t.Fatalf("synced readings lost: have 1..%d, child had synced through %d", k, synced)
	}
	// At most the readings after the last completed sync may be missing.
	if appended > k && appended-k > syncEvery {
		t.Fatalf("lost %d readings (have 1..%d, appended %d), more than one sync period (%d)", appended-k, k, appended, syncEvery)
	}
	// The gap is reported: numbers up to the reservation are accounted for.
	if rec.LastBuffered != k || rec.ReservedThrough < appended {
		t.Fatalf("recovery %+v: want last buffered %d and reservation >= %d", rec, k, appended)
	}
	// And never reused.
	r := &wire.Reading{Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, WallNs: 1, TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED}
	if err := b.Append("boot2", r); err != nil || r.Seq <= appended {
		t.Fatalf("after the crash got seq %d (err %v), last appended before it %d", r.Seq, err, appended)
	}
	t.Logf("child appended %d, synced %d; recovered 1..%d; gap reported %d..%d", appended, synced, k, rec.LastBuffered+1, rec.ReservedThrough)
}
