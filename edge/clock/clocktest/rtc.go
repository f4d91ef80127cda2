package clocktest

import (
	"errors"
	"sync"
	"time"
)

// ErrTimeInvalid is what RTC.Time returns while the simulated chip's
// oscillator-stop flag is set.
var ErrTimeInvalid = errors.New("clocktest: rtc oscillator stopped, time invalid")

// RTC is a simulated battery-backed clock with one-second resolution, like
// a DS3231. It follows the Kernel it was made with: its time advances with
// the kernel's monotonic clock, never with wall-clock steps.
type RTC struct {
	k *Kernel

	mu      sync.Mutex
	offset  int64 // rtc time − kernel monotonic time
	invalid bool
	readErr error
	setErr  error
	writes  []time.Time
}

// NewRTC returns an RTC showing t now, following k's monotonic clock.
func NewRTC(k *Kernel, t time.Time) *RTC {
	mono, _ := k.Boottime()
	return &RTC{k: k, offset: t.UnixNano() - mono}
}

// Time implements clock.RTC, truncated to whole seconds.
func (r *RTC) Time() (time.Time, error) {
	mono, _ := r.k.Boottime()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.readErr != nil {
		return time.Time{}, r.readErr
	}
	if r.invalid {
		return time.Time{}, ErrTimeInvalid
	}
	return time.Unix(0, mono+r.offset).UTC().Truncate(time.Second), nil
}

// SetTime implements clock.RTC; it clears the invalid flag.
func (r *RTC) SetTime(t time.Time) error {
	mono, _ := r.k.Boottime()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.setErr != nil {
		return r.setErr
	}
	t = t.Truncate(time.Second)
	r.offset, r.invalid = t.UnixNano()-mono, false
	r.writes = append(r.writes, t)
	return nil
}

// Invalidate sets the oscillator-stop flag (battery ran flat).
func (r *RTC) Invalidate() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.invalid = true
}

// FailReads makes Time return err (nil restores it); FailWrites does the
// same for SetTime.
func (r *RTC) FailReads(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.readErr = err
}

// FailWrites makes SetTime return err (nil restores it).
func (r *RTC) FailWrites(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setErr = err
}

// Writes returns every time written with SetTime, in order.
func (r *RTC) Writes() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.writes...)
}
