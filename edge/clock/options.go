package clock

import (
	"log/slog"
	"time"
)

// Defaults used by NewSystem; each has an Option to change it.
const (
	// DefaultStepThreshold is how far the kernel's wall−monotonic offset
	// may move before it counts as a step. On Linux the offset moves only
	// when the clock is set, so any honest step exceeds it; reading the two
	// clocks is retried until they are read within 1 ms of each other, so
	// jitter stays far below it.
	DefaultStepThreshold = 100 * time.Millisecond
	// DefaultRTCError bounds the error of RTC-based stamps: the DS3231's
	// 1 s resolution plus ±2 ppm drift for about a month since it was last
	// set from a synchronised clock.
	DefaultRTCError = 10 * time.Second
	// DefaultRTCInterval is how often the RTC is rewritten while synced.
	DefaultRTCInterval = time.Hour
	// DefaultCheckInterval is how often Run observes the kernel clock.
	DefaultCheckInterval = 10 * time.Second
)

// ErrorUnbounded is the ErrorNs of an estimated stamp when nothing bounds
// its error: the kernel clock was never synchronised in this boot and no RTC
// is fitted, so the wall time may be 1970 or any stale value.
const ErrorUnbounded int64 = 1<<63 - 1

// DefaultEarliestValid is the earliest wall time an RTC may report and still
// be believed (2025-01-01 UTC); anything before it means the chip lost its
// time.
func DefaultEarliestValid() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }

// Option configures NewSystem.
type Option func(*config)

type config struct {
	kernel           Kernel
	rtc              RTC
	logger           *slog.Logger
	maxEstimateError int64
	rtcError         int64
	stepThreshold    int64
	rtcInterval      int64
	checkInterval    time.Duration
	earliestValid    time.Time
}

func defaultConfig() config {
	return config{
		maxEstimateError: ErrorUnbounded,
		rtcError:         int64(DefaultRTCError),
		stepThreshold:    int64(DefaultStepThreshold),
		rtcInterval:      int64(DefaultRTCInterval),
		checkInterval:    DefaultCheckInterval,
		earliestValid:    DefaultEarliestValid(),
	}
}

// WithKernel reads clocks from k instead of the running Linux kernel.
func WithKernel(k Kernel) Option { return func(c *config) { c.kernel = k } }

// WithRTC uses rtc as the time source until the kernel clock syncs, and
// keeps it set from the kernel clock once synced. A nil rtc means none.
func WithRTC(rtc RTC) Option { return func(c *config) { c.rtc = rtc } }

// WithLogger logs sync, step and RTC events to l (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithMaxEstimateError sets the error bound of estimated stamps (default
// ErrorUnbounded). Set it only when something outside the agent guarantees
// the kernel's unsynchronised wall clock is never further off than d.
func WithMaxEstimateError(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.maxEstimateError = int64(d)
		}
	}
}

// WithRTCError sets the error bound of stamps taken from the RTC (default
// DefaultRTCError).
func WithRTCError(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.rtcError = int64(d)
		}
	}
}

// WithStepThreshold sets how large a change of the wall−monotonic offset is
// treated as a clock step (default DefaultStepThreshold).
func WithStepThreshold(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.stepThreshold = int64(d)
		}
	}
}

// WithRTCInterval sets how often the RTC is rewritten while synced (default
// DefaultRTCInterval); it is also written at first sync and after a step.
func WithRTCInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.rtcInterval = int64(d)
		}
	}
}

// WithCheckInterval sets how often Run observes the kernel clock (default
// DefaultCheckInterval).
func WithCheckInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.checkInterval = d
		}
	}
}

// WithEarliestValid rejects RTC readings before t (default
// DefaultEarliestValid()) as a chip that lost its time.
func WithEarliestValid(t time.Time) Option { return func(c *config) { c.earliestValid = t } }
