//go:build unix

package sim

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// RaiseOpenFiles raises the process's open-files limit (RLIMIT_NOFILE) to
// at least want, raising the hard limit too when the process may (root, or
// CAP_SYS_RESOURCE), never past the kernel's fs.nr_open. It returns the
// soft limit now in force, and an error saying what to do when that is
// still below want.
func RaiseOpenFiles(want uint64) (uint64, error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("open-files limit: %w", err)
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			want = min(want, n)
		}
	}
	if want > lim.Max {
		raised := unix.Rlimit{Cur: want, Max: want}
		if unix.Setrlimit(unix.RLIMIT_NOFILE, &raised) == nil {
			return want, nil
		}
	}
	lim.Cur = min(want, lim.Max)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("open-files limit: %w", err)
	}
	if lim.Cur < want {
		return lim.Cur, fmt.Errorf("open-files limit is %d, %d wanted: raise the hard limit (ulimit -Hn, or LimitNOFILE= in a systemd unit) or run fewer meters", lim.Cur, want)
	}
	return lim.Cur, nil
}
