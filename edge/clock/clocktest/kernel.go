package clocktest

import (
	"errors"
	"sync"
	"time"

	"github.com/gridedge/gridedge/edge/clock"
)

// Kernel is a simulated kernel clock: monotonic (CLOCK_BOOTTIME) and wall
// (CLOCK_REALTIME) time move only when the test says so. It is safe for
// concurrent use.
type Kernel struct {
	mu       sync.Mutex
	bootID   string
	mono     int64
	wall     int64
	synced   bool
	maxError time.Duration
	syncErr  error
}

var _ clock.Kernel = (*Kernel)(nil)

// NewKernel returns a kernel that booted with the given id, monotonic time
// mono since boot and wall clock wall, not synchronised.
func NewKernel(bootID string, mono time.Duration, wall time.Time) *Kernel {
	return &Kernel{bootID: bootID, mono: int64(mono), wall: wall.UnixNano(), maxError: 16 * time.Second}
}

// Boottime implements clock.Kernel.
func (k *Kernel) Boottime() (int64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.mono, nil
}

// Realtime implements clock.Kernel.
func (k *Kernel) Realtime() (int64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.wall, nil
}

// Sync implements clock.Kernel.
func (k *Kernel) Sync() (clock.SyncStatus, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.syncErr != nil {
		return clock.SyncStatus{}, k.syncErr
	}
	return clock.SyncStatus{Synchronized: k.synced, MaxError: k.maxError}, nil
}

// BootID implements clock.Kernel.
func (k *Kernel) BootID() (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.bootID == "" {
		return "", errors.New("clocktest: no boot id")
	}
	return k.bootID, nil
}

// Advance lets d pass: both clocks move by d.
func (k *Kernel) Advance(d time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.mono += int64(d)
	k.wall += int64(d)
}

// Step moves only the wall clock by d, as settimeofday or an NTP step does.
func (k *Kernel) Step(d time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.wall += int64(d)
}

// SyncTo steps the wall clock to wall and marks it synchronised with the
// given maximum error, as a time daemon does at its first sync.
func (k *Kernel) SyncTo(wall time.Time, maxError time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.wall = wall.UnixNano()
	k.synced, k.maxError = true, maxError
}

// SetSynced sets the synchronised flag and maximum error without moving
// the clock.
func (k *Kernel) SetSynced(synced bool, maxError time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.synced, k.maxError = synced, maxError
}

// FailSync makes Sync return err (nil restores it), as a seccomp filter
// denying adjtimex would.
func (k *Kernel) FailSync(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.syncErr = err
}

// Reboot starts a new boot: new id, monotonic time mono, wall clock wall,
// not synchronised.
func (k *Kernel) Reboot(bootID string, mono time.Duration, wall time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.bootID, k.mono, k.wall, k.synced = bootID, int64(mono), wall.UnixNano(), false
}
