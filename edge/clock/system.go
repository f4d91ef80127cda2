package clock

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gridedge/gridedge/shared/wire"
)

// driftTolerance is the kernel's bound on the frequency error of a clock a
// time daemon has disciplined (MAXFREQ, 500 ppm): once sync is lost the
// error of mono+offset grows by at most this much per elapsed second.
const driftToleranceDivisor = 2000 // 1/2000 = 500 ppm

// maxPairSpread is how far apart two CLOCK_BOOTTIME reads bracketing a
// CLOCK_REALTIME read may be before the pair is read again: it bounds the
// error of one wall−monotonic offset measurement to half of it.
const maxPairSpread = int64(time.Millisecond)

// System is the clock.Source for a real gateway: it stamps readings from the
// kernel clocks, an optional RTC, and what it has learned in this boot.
//
// Rules, in order, for the stamp of the present moment:
//   - kernel synchronised: wall is the kernel's wall time, quality synced,
//     ErrorNs the kernel's maxerror;
//   - synchronised earlier in this boot but not now: wall = mono + the last
//     synchronised offset, quality corrected, ErrorNs that offset's error
//     plus 500 ppm of the time since (manual clock changes are ignored);
//   - never synchronised, RTC read valid at start: wall = RTC time at start +
//     monotonic time since, quality rtc, ErrorNs the RTC error bound;
//   - otherwise: the kernel's wall time, quality estimated, ErrorNs the
//     configured bound (ErrorUnbounded by default).
//
// See Correct for re-stamping and docs/time.md for the full model.
type System struct {
	cfg    config
	kernel Kernel
	rtc    RTC
	log    *slog.Logger
	bootID string

	mu sync.Mutex
	// offset is wall − mono learned from the synchronised kernel clock in
	// this boot (valid when haveOffset); offsetErr bounds its error.
	haveOffset bool
	offset     int64
	offsetErr  int64
	// syncedMono is the monotonic time the offset was last confirmed.
	syncedMono int64
	synced     bool
	// rtcOffset is RTC wall − mono read once at start (valid when haveRTC).
	haveRTC   bool
	rtcOffset int64
	// rtcDue asks the next Check to write the RTC; lastRTCWrite is the
	// monotonic time of the last successful write (valid when rtcWritten).
	rtcDue       bool
	rtcWritten   bool
	lastRTCWrite int64
	lastMono     int64
	stats        Stats
}

var _ Source = (*System)(nil)

// Stats counts what the clock has observed since NewSystem.
type Stats struct {
	// Syncs counts transitions from not synchronised to synchronised.
	Syncs uint64
	// Steps counts wall−monotonic offset jumps beyond the step threshold
	// while synchronised (NTP steps, leap seconds, manual changes).
	Steps uint64
	// LastStepNs is the size of the last step (new offset − old offset).
	LastStepNs int64
	// RTCWrites and RTCWriteErrors count RTC updates from the system clock.
	RTCWrites, RTCWriteErrors uint64
	// KernelErrors counts failed clock reads (each yields an estimated
	// stamp with an unbounded error).
	KernelErrors uint64
}

// NewSystem starts a clock. It reads the boot id and probes every kernel
// call once, so a sandbox that denies adjtimex (systemd ProtectClock=yes)
// fails here with a clear error instead of never reporting sync. When the
// kernel is not yet synchronised and an RTC is given, the RTC is read once
// here; an RTC that fails or reports a time before the earliest valid time
// is logged and ignored.
func NewSystem(opts ...Option) (*System, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.kernel == nil {
		k, err := defaultKernel()
		if err != nil {
			return nil, err
		}
		cfg.kernel = k
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	s := &System{cfg: cfg, kernel: cfg.kernel, rtc: cfg.rtc, log: cfg.logger.With("component", "clock")}
	id, err := s.kernel.BootID()
	if err != nil {
		return nil, fmt.Errorf("clock: %w", err)
	}
	s.bootID = id
	mono, wall, err := s.readPair()
	if err != nil {
		return nil, fmt.Errorf("clock: %w", err)
	}
	st, err := s.kernel.Sync()
	if err != nil {
		return nil, fmt.Errorf("clock: %w (a seccomp filter on @clock, e.g. systemd ProtectClock=yes, blocks even read-only adjtimex)", err)
	}
	if !st.Synchronized && s.rtc != nil {
		s.readRTC()
	}
	s.mu.Lock()
	stamp := s.observeLocked(mono, wall, st)
	s.mu.Unlock()
	s.log.Info("clock started", "boot_id", id, "quality", stamp.Quality.Name(),
		"wall", time.Unix(0, stamp.WallNs).UTC(), "rtc", s.haveRTC)
	return s, nil
}

// readRTC reads the RTC once and remembers its offset to monotonic time.
func (s *System) readRTC() {
	t, err := s.rtc.Time()
	if err != nil {
		s.log.Warn("rtc unusable, time stays estimated until sync", "err", err)
		return
	}
	mono, err := s.kernel.Boottime()
	if err != nil {
		s.log.Warn("rtc not used: monotonic clock unreadable", "err", err)
		return
	}
	if t.Before(s.cfg.earliestValid) {
		s.log.Warn("rtc time before earliest valid time, ignored", "rtc", t.UTC(), "earliest", s.cfg.earliestValid)
		return
	}
	s.mu.Lock()
	s.haveRTC = true
	s.rtcOffset = t.UnixNano() - mono
	s.mu.Unlock()
}

// BootID is the id of the boot this clock stamps in.
func (s *System) BootID() string { return s.bootID }

// Now stamps the present moment. It reads the kernel clocks and sync state
// every time, so a sync or step is seen by the first stamp after it.
func (s *System) Now() Stamp {
	mono, wall, err := s.readPair()
	var st SyncStatus
	if err == nil {
		// A failed adjtimex only means sync is unknown: carry on unsynced.
		var serr error
		if st, serr = s.kernel.Sync(); serr != nil {
			st = SyncStatus{}
			s.mu.Lock()
			s.stats.KernelErrors++
			s.mu.Unlock()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.stats.KernelErrors++
		// Keep monotonic order with the last good stamp and its best
		// timeline, but promise nothing about the wall time.
		wall := int64(0)
		switch {
		case s.haveOffset:
			wall = s.lastMono + s.offset
		case s.haveRTC:
			wall = s.lastMono + s.rtcOffset
		}
		return Stamp{BootID: s.bootID, MonoNs: s.lastMono, WallNs: wall,
			Quality: wire.TimeQuality_TIME_QUALITY_ESTIMATED, ErrorNs: ErrorUnbounded}
	}
	return s.observeLocked(mono, wall, st)
}

// readPair reads CLOCK_BOOTTIME and CLOCK_REALTIME as one instant: the wall
// read is bracketed by two monotonic reads and paired with their midpoint;
// the pair is read again (up to three times) when the brackets are too far
// apart because the thread was preempted.
func (s *System) readPair() (mono, wall int64, err error) {
	bestSpread := int64(-1)
	for range 3 {
		m1, err := s.kernel.Boottime()
		if err != nil {
			return 0, 0, err
		}
		w, err := s.kernel.Realtime()
		if err != nil {
			return 0, 0, err
		}
		m2, err := s.kernel.Boottime()
		if err != nil {
			return 0, 0, err
		}
		spread := m2 - m1
		if bestSpread < 0 || spread < bestSpread {
			bestSpread, mono, wall = spread, m1+spread/2, w
		}
		if spread <= maxPairSpread {
			break
		}
	}
	return mono, wall, nil
}

// observeLocked applies one kernel observation and returns the stamp for it.
func (s *System) observeLocked(mono, wall int64, st SyncStatus) Stamp {
	if mono > s.lastMono {
		s.lastMono = mono
	}
	cur := wall - mono
	if st.Synchronized {
		switch {
		case !s.haveOffset:
			s.log.Info("clock synchronised", "wall", time.Unix(0, wall).UTC(), "max_error", st.MaxError)
			s.rtcDue = true
		case !s.synced:
			s.log.Info("clock synchronised again", "offset_change", time.Duration(cur-s.offset))
			if abs(cur-s.offset) > s.cfg.stepThreshold {
				s.noteStepLocked(cur - s.offset)
			}
		case abs(cur-s.offset) > s.cfg.stepThreshold:
			s.log.Warn("clock stepped while synchronised", "step", time.Duration(cur-s.offset))
			s.noteStepLocked(cur - s.offset)
		}
		if !s.synced {
			s.stats.Syncs++
		}
		s.haveOffset, s.synced = true, true
		s.offset, s.offsetErr, s.syncedMono = cur, int64(st.MaxError), mono
		return Stamp{BootID: s.bootID, MonoNs: mono, WallNs: wall,
			Quality: wire.TimeQuality_TIME_QUALITY_SYNCED, ErrorNs: int64(st.MaxError)}
	}
	if s.synced {
		s.log.Warn("clock lost synchronisation; stamping from the last synchronised offset", "max_error", st.MaxError)
		s.synced = false
	}
	if s.haveOffset {
		return Stamp{BootID: s.bootID, MonoNs: mono, WallNs: mono + s.offset,
			Quality: wire.TimeQuality_TIME_QUALITY_CORRECTED, ErrorNs: s.lostSyncErrorLocked(mono)}
	}
	if s.haveRTC {
		return Stamp{BootID: s.bootID, MonoNs: mono, WallNs: mono + s.rtcOffset,
			Quality: wire.TimeQuality_TIME_QUALITY_RTC, ErrorNs: s.cfg.rtcError}
	}
	return Stamp{BootID: s.bootID, MonoNs: mono, WallNs: wall,
		Quality: wire.TimeQuality_TIME_QUALITY_ESTIMATED, ErrorNs: s.cfg.maxEstimateError}
}

func (s *System) noteStepLocked(step int64) {
	s.stats.Steps++
	s.stats.LastStepNs = step
	s.rtcDue = true
}

// lostSyncErrorLocked bounds the error of mono+offset after sync was lost.
func (s *System) lostSyncErrorLocked(mono int64) int64 {
	elapsed := max(mono-s.syncedMono, 0)
	e := s.offsetErr + elapsed/driftToleranceDivisor
	if e < s.offsetErr { // overflow
		return ErrorUnbounded
	}
	return e
}

// Correct returns the best time now known for a stamp taken earlier.
//
// Once the kernel clock has been synchronised in this boot, every stamp of
// this boot is mapped onto one timeline, wall = mono + offset, where offset
// is the latest synchronised wall−monotonic offset:
//   - rtc or estimated stamps become corrected with the offset's error;
//   - synced or corrected stamps whose wall is within the step threshold of
//     that timeline come back unchanged;
//   - synced or corrected stamps taken under an offset a later step replaced
//     are moved onto the new timeline and marked corrected, so wall time
//     differences always equal monotonic differences within one boot.
//
// Stamps of another boot, and all stamps before any sync, come back
// unchanged. While the clock is not known to be synchronised, Correct first
// observes the kernel, so a sync is used even before the next Now.
func (s *System) Correct(st Stamp) Stamp {
	s.mu.Lock()
	observed := s.synced
	s.mu.Unlock()
	if !observed && st.BootID == s.bootID {
		s.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.BootID != s.bootID || !s.haveOffset {
		return st
	}
	target := st.MonoNs + s.offset
	switch st.Quality {
	case wire.TimeQuality_TIME_QUALITY_SYNCED, wire.TimeQuality_TIME_QUALITY_CORRECTED:
		if abs(st.WallNs-target) <= s.cfg.stepThreshold {
			return st
		}
	}
	return Stamp{BootID: st.BootID, MonoNs: st.MonoNs, WallNs: target,
		Quality: wire.TimeQuality_TIME_QUALITY_CORRECTED, ErrorNs: s.offsetErr}
}

// Quality observes the kernel clock and returns the present quality.
func (s *System) Quality() wire.TimeQuality { return s.Now().Quality }

// Stats returns the counters so far.
func (s *System) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Check observes the kernel clock once and, while it is synchronised, writes
// the RTC when due: at first sync, after a step, and every RTC interval. Run
// calls it periodically; tests call it directly. The returned error is the
// RTC write failure, if any (the clock keeps working without the RTC).
func (s *System) Check() error {
	now := s.Now()
	if s.rtc == nil || now.Quality != wire.TimeQuality_TIME_QUALITY_SYNCED {
		return nil
	}
	s.mu.Lock()
	due := s.rtcDue || !s.rtcWritten || now.MonoNs-s.lastRTCWrite >= s.cfg.rtcInterval
	s.mu.Unlock()
	if !due {
		return nil
	}
	err := s.rtc.SetTime(time.Unix(0, now.WallNs).UTC())
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.stats.RTCWriteErrors++
		return fmt.Errorf("clock: set rtc: %w", err)
	}
	s.stats.RTCWrites++
	s.rtcDue, s.rtcWritten, s.lastRTCWrite = false, true, now.MonoNs
	return nil
}

// Run calls Check every check interval until ctx is done, logging RTC write
// failures. It returns nil when ctx is cancelled.
func (s *System) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.checkInterval)
	defer t.Stop()
	for {
		if err := s.Check(); err != nil {
			s.log.Warn("rtc update failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
