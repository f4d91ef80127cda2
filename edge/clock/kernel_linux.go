//go:build linux

package clock

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// bootIDPath is where Linux publishes the random id of the running boot.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// LinuxKernel reads the clocks of the running Linux kernel. The zero value
// is ready to use.
type LinuxKernel struct{}

var _ Kernel = LinuxKernel{}

// Boottime reads CLOCK_BOOTTIME.
func (LinuxKernel) Boottime() (int64, error) {
	return clockGettime(unix.CLOCK_BOOTTIME, "CLOCK_BOOTTIME")
}

// Realtime reads CLOCK_REALTIME.
func (LinuxKernel) Realtime() (int64, error) {
	return clockGettime(unix.CLOCK_REALTIME, "CLOCK_REALTIME")
}

func clockGettime(id int32, name string) (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(id, &ts); err != nil {
		return 0, fmt.Errorf("clock_gettime(%s): %w", name, err)
	}
	return ts.Nano(), nil
}

// Sync calls adjtimex with Modes 0, which only reads the kernel's NTP state
// and needs no privilege. It fails with EPERM when a seccomp filter denies
// the @clock system calls (systemd's ProtectClock=yes does that).
func (LinuxKernel) Sync() (SyncStatus, error) {
	var tx unix.Timex // Modes 0: read only
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return SyncStatus{}, fmt.Errorf("adjtimex: %w", err)
	}
	// Timex fields are int32 on 32-bit ARM and int64 on 64-bit targets.
	return SyncStatus{
		Synchronized: tx.Status&unix.STA_UNSYNC == 0 && state != unix.TIME_ERROR,
		MaxError:     time.Duration(int64(tx.Maxerror)) * time.Microsecond,
	}, nil
}

// BootID reads /proc/sys/kernel/random/boot_id.
func (LinuxKernel) BootID() (string, error) {
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		return "", fmt.Errorf("read boot id: %w", err)
	}
	id := string(bytes.TrimSpace(b))
	if id == "" {
		return "", fmt.Errorf("read boot id: %s is empty", bootIDPath)
	}
	return id, nil
}

func defaultKernel() (Kernel, error) { return LinuxKernel{}, nil }
