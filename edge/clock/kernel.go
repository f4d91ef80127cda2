package clock

import "time"

// Kernel is what the clock needs from the operating system. The Linux
// implementation is LinuxKernel; tests inject a simulated one
// (clocktest.Kernel) to drive boots, syncs and steps deterministically.
type Kernel interface {
	// Boottime is CLOCK_BOOTTIME in ns: monotonic, counts suspend, never
	// steps, restarts from zero at each boot.
	Boottime() (int64, error)
	// Realtime is CLOCK_REALTIME in ns since the Unix epoch: what the
	// kernel believes the wall time is; it steps when someone sets it.
	Realtime() (int64, error)
	// Sync reports whether the kernel considers the wall clock
	// synchronised (adjtimex with modes 0).
	Sync() (SyncStatus, error)
	// BootID identifies the current boot (random, changes every boot).
	BootID() (string, error)
}

// SyncStatus is the kernel's own view of the wall clock's quality.
type SyncStatus struct {
	// Synchronized is true when a time daemon (chrony, ntpd,
	// systemd-timesyncd) has disciplined the clock: STA_UNSYNC is clear and
	// adjtimex did not return TIME_ERROR.
	Synchronized bool
	// MaxError is the kernel's maximum error estimate (timex.maxerror). The
	// kernel grows it by 500 ppm of elapsed time until a daemon refreshes it
	// and sets STA_UNSYNC once it passes 16 s.
	MaxError time.Duration
}
