// Package clock tells the agent what time it is and how far to trust it.
//
// Raspberry-Pi-class gateways have no battery-backed clock: after a power cut
// the kernel's wall clock is 1970 or a stale fake-hwclock value until NTP
// syncs, then it jumps. A Source stamps every reading with the boot id, the
// monotonic CLOCK_BOOTTIME and the best wall time available with a quality
// (synced / rtc / corrected / estimated), and re-stamps readings taken before
// sync once the offset between monotonic and wall time is known.
//
// System is the Source for a real gateway. It reads the kernel through the
// Kernel interface (LinuxKernel: clock_gettime, adjtimex, boot_id), uses an
// optional RTC (such as a DS3231 driver) until the kernel clock is
// synchronised, learns the wall−monotonic offset at sync, detects NTP steps,
// and keeps the RTC set while synchronised. Package clocktest simulates the
// kernel and an RTC for deterministic tests. docs/time.md describes the model
// with worked examples.
package clock
