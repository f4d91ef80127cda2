//go:build unix

package window_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the test process has used (user + system),
// so throughput can be stated per CPU-second on a shared machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
