package clock_test

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridedge/gridedge/edge/clock"
	"github.com/gridedge/gridedge/edge/clock/clocktest"
	"github.com/gridedge/gridedge/shared/wire"
)

const (
	synced    = wire.TimeQuality_TIME_QUALITY_SYNCED
	rtcQ      = wire.TimeQuality_TIME_QUALITY_RTC
	corrected = wire.TimeQuality_TIME_QUALITY_CORRECTED
	estimated = wire.TimeQuality_TIME_QUALITY_ESTIMATED
)

var (
	epoch = time.Unix(0, 0).UTC()
	// realNow is the true time in the scenarios.
	realNow = time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newSystem(t *testing.T, k *clocktest.Kernel, opts ...clock.Option) *clock.System {
	t.Helper()
	s, err := clock.NewSystem(append([]clock.Option{clock.WithKernel(k), clock.WithLogger(quiet())}, opts...)...)
	if err != nil {
		t.Fatalf("NewSystem: %v", err)
	}
	return s
}

func ns(t time.Time) int64 { return t.UnixNano() }

func assertStamp(t *testing.T, what string, got, want clock.Stamp) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n got  %+v (wall %v)\n want %+v (wall %v)", what, got,
			time.Unix(0, got.WallNs).UTC(), want, time.Unix(0, want.WallNs).UTC())
	}
}

func TestBootIn1970ThenSync(t *testing.T) {
	k := clocktest.NewKernel("boot-a", 5*time.Second, epoch.Add(5*time.Second))
	s := newSystem(t, k)

	early := s.Now()
	assertStamp(t, "before sync", early, clock.Stamp{BootID: "boot-a", MonoNs: int64(5 * time.Second),
		WallNs: int64(5 * time.Second), Quality: estimated, ErrorNs: clock.ErrorUnbounded})
	if q := s.Quality(); q != estimated {
		t.Errorf("Quality before sync = %v, want estimated", q.Name())
	}
	// Correct cannot improve anything before sync.
	assertStamp(t, "correct before sync", s.Correct(early), early)

	k.Advance(10 * time.Second)
	later := s.Now()
	k.SyncTo(realNow, 20*time.Millisecond)

	now := s.Now()
	assertStamp(t, "after sync", now, clock.Stamp{BootID: "boot-a", MonoNs: int64(15 * time.Second),
		WallNs: ns(realNow), Quality: synced, ErrorNs: int64(20 * time.Millisecond)})
	// wall = mono + offset learned at sync: early was 10 s before the sync.
	assertStamp(t, "early corrected", s.Correct(early), clock.Stamp{BootID: "boot-a", MonoNs: early.MonoNs,
		WallNs: ns(realNow.Add(-10 * time.Second)), Quality: corrected, ErrorNs: int64(20 * time.Millisecond)})
	assertStamp(t, "later corrected", s.Correct(later), clock.Stamp{BootID: "boot-a", MonoNs: later.MonoNs,
		WallNs: ns(realNow), Quality: corrected, ErrorNs: int64(20 * time.Millisecond)})
	assertStamp(t, "synced stamp unchanged", s.Correct(now), now)
	if st := s.Stats(); st.Syncs != 1 || st.Steps != 0 {
		t.Errorf("stats = %+v, want 1 sync and no step (the first sync is not a step)", st)
	}
}

func TestStaleFakeHwclockThenSync(t *testing.T) {
	// fake-hwclock restored the time saved at shutdown, three days ago.
	stale := realNow.Add(-72 * time.Hour)
	k := clocktest.NewKernel("boot-b", 8*time.Second, stale)
	s := newSystem(t, k)

	k.Advance(time.Minute)
	reading := s.Now()
	assertStamp(t, "stale estimate", reading, clock.Stamp{BootID: "boot-b", MonoNs: int64(68 * time.Second),
		WallNs: ns(stale.Add(time.Minute)), Quality: estimated, ErrorNs: clock.ErrorUnbounded})

	k.Advance(2 * time.Minute)
	k.SyncTo(realNow, 5*time.Millisecond)
	assertStamp(t, "corrected", s.Correct(reading), clock.Stamp{BootID: "boot-b", MonoNs: reading.MonoNs,
		WallNs: ns(realNow.Add(-2 * time.Minute)), Quality: corrected, ErrorNs: int64(5 * time.Millisecond)})
}

// syncedSystem returns a clock synchronised to realNow at monotonic 100 s,
// plus an estimated stamp taken 30 s before the sync.
func syncedSystem(t *testing.T, opts ...clock.Option) (*clocktest.Kernel, *clock.System, clock.Stamp) {
	t.Helper()
	k := clocktest.NewKernel("boot-c", 70*time.Second, epoch.Add(70*time.Second))
	s := newSystem(t, k, opts...)
	pre := s.Now()
	k.Advance(30 * time.Second)
	k.SyncTo(realNow, 10*time.Millisecond)
	if q := s.Quality(); q != synced {
		t.Fatalf("quality after sync = %v", q.Name())
	}
	return k, s, pre
}

func TestStepBackOneHourWhileSynced(t *testing.T) {
	k, s, pre := syncedSystem(t)
	before := s.Now() // mono 100 s, wall realNow
	k.Advance(time.Minute)
	k.Step(-time.Hour)
	after := s.Now()

	assertStamp(t, "first stamp after step", after, clock.Stamp{BootID: "boot-c", MonoNs: int64(160 * time.Second),
		WallNs: ns(realNow.Add(time.Minute - time.Hour)), Quality: synced, ErrorNs: int64(10 * time.Millisecond)})
	if after.MonoNs <= before.MonoNs {
		t.Errorf("monotonic order broken: %d then %d", before.MonoNs, after.MonoNs)
	}
	if st := s.Stats(); st.Steps != 1 || st.LastStepNs != int64(-time.Hour) {
		t.Errorf("stats = %+v, want one step of -1h", st)
	}
	// The stamp taken under the old offset moves onto the new timeline, so
	// its interval to the later stamp equals the monotonic interval.
	fixed := s.Correct(before)
	assertStamp(t, "pre-step synced stamp", fixed, clock.Stamp{BootID: "boot-c", MonoNs: before.MonoNs,
		WallNs: ns(realNow.Add(-time.Hour)), Quality: corrected, ErrorNs: int64(10 * time.Millisecond)})
	if got, want := after.WallNs-fixed.WallNs, after.MonoNs-fixed.MonoNs; got != want {
		t.Errorf("wall interval %v != monotonic interval %v", time.Duration(got), time.Duration(want))
	}
	assertStamp(t, "pre-sync stamp", s.Correct(pre), clock.Stamp{BootID: "boot-c", MonoNs: pre.MonoNs,
		WallNs: ns(realNow.Add(-30*time.Second - time.Hour)), Quality: corrected, ErrorNs: int64(10 * time.Millisecond)})
	assertStamp(t, "post-step stamp", s.Correct(after), after)
}

func TestStepForwardWhileSynced(t *testing.T) {
	k, s, _ := syncedSystem(t)
	before := s.Now()
	k.Advance(time.Second)
	k.Step(90 * time.Second)
	after := s.Now()
	if after.Quality != synced || after.WallNs != ns(realNow.Add(91*time.Second)) {
		t.Fatalf("after step: %+v", after)
	}
	if st := s.Stats(); st.Steps != 1 || st.LastStepNs != int64(90*time.Second) {
		t.Errorf("stats = %+v, want one step of +90s", st)
	}
	assertStamp(t, "pre-step", s.Correct(before), clock.Stamp{BootID: "boot-c", MonoNs: before.MonoNs,
		WallNs: ns(realNow.Add(90 * time.Second)), Quality: corrected, ErrorNs: int64(10 * time.Millisecond)})
}

func TestSmallOffsetChangeIsNotAStep(t *testing.T) {
	k, s, _ := syncedSystem(t)
	before := s.Now()
	k.Advance(time.Second)
	k.Step(40 * time.Millisecond) // below the 100 ms default threshold
	s.Now()
	if st := s.Stats(); st.Steps != 0 {
		t.Errorf("steps = %d, want 0", st.Steps)
	}
	assertStamp(t, "synced stamp within threshold", s.Correct(before), before)
}

func TestNeverSyncs(t *testing.T) {
	k := clocktest.NewKernel("boot-d", time.Second, epoch.Add(time.Second))
	s := newSystem(t, k)
	for i := range 3 {
		k.Advance(time.Hour)
		st := s.Now()
		want := clock.Stamp{BootID: "boot-d", MonoNs: int64(time.Second + time.Duration(i+1)*time.Hour),
			WallNs: ns(epoch.Add(time.Second + time.Duration(i+1)*time.Hour)), Quality: estimated, ErrorNs: clock.ErrorUnbounded}
		assertStamp(t, "estimated", st, want)
		assertStamp(t, "not correctable", s.Correct(st), st)
	}
	bounded := newSystem(t, k, clock.WithMaxEstimateError(time.Hour))
	if got := bounded.Now().ErrorNs; got != int64(time.Hour) {
		t.Errorf("ErrorNs with WithMaxEstimateError(1h) = %v", time.Duration(got))
	}
}

func TestOtherBootIsNotCorrected(t *testing.T) {
	k := clocktest.NewKernel("boot-old", time.Minute, epoch.Add(time.Minute))
	old := newSystem(t, k).Now()
	k.Reboot("boot-new", 3*time.Second, epoch.Add(3*time.Second))
	s := newSystem(t, k)
	k.SyncTo(realNow, time.Millisecond)
	s.Now()
	assertStamp(t, "previous boot's stamp", s.Correct(old), old)
	if s.BootID() != "boot-new" {
		t.Errorf("BootID = %q", s.BootID())
	}
}

func TestRTCValid(t *testing.T) {
	k := clocktest.NewKernel("boot-e", 4*time.Second, epoch.Add(4*time.Second))
	rtcTime := realNow.Add(-2 * time.Second) // the RTC runs 2 s slow
	rtc := clocktest.NewRTC(k, rtcTime)
	s := newSystem(t, k, clock.WithRTC(rtc))

	first := s.Now()
	assertStamp(t, "rtc stamp", first, clock.Stamp{BootID: "boot-e", MonoNs: int64(4 * time.Second),
		WallNs: ns(rtcTime), Quality: rtcQ, ErrorNs: int64(clock.DefaultRTCError)})
	k.Advance(30 * time.Second)
	// Tracked by monotonic time since the single read at start.
	rtc.Invalidate()
	second := s.Now()
	assertStamp(t, "rtc stamp 30s later", second, clock.Stamp{BootID: "boot-e", MonoNs: int64(34 * time.Second),
		WallNs: ns(rtcTime.Add(30 * time.Second)), Quality: rtcQ, ErrorNs: int64(clock.DefaultRTCError)})

	k.SyncTo(realNow.Add(30*time.Second), time.Millisecond)
	assertStamp(t, "rtc stamp corrected", s.Correct(first), clock.Stamp{BootID: "boot-e", MonoNs: first.MonoNs,
		WallNs: ns(realNow), Quality: corrected, ErrorNs: int64(time.Millisecond)})
}

func TestRTCUnusable(t *testing.T) {
	cases := map[string]func(k *clocktest.Kernel) *clocktest.RTC{
		"oscillator stopped": func(k *clocktest.Kernel) *clocktest.RTC {
			r := clocktest.NewRTC(k, realNow)
			r.Invalidate()
			return r
		},
		"read error": func(k *clocktest.Kernel) *clocktest.RTC {
			r := clocktest.NewRTC(k, realNow)
			r.FailReads(errors.New("i2c: no ack"))
			return r
		},
		"before earliest valid": func(k *clocktest.Kernel) *clocktest.RTC {
			return clocktest.NewRTC(k, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			k := clocktest.NewKernel("boot-f", 4*time.Second, epoch.Add(4*time.Second))
			s := newSystem(t, k, clock.WithRTC(mk(k)))
			assertStamp(t, "estimated", s.Now(), clock.Stamp{BootID: "boot-f", MonoNs: int64(4 * time.Second),
				WallNs: int64(4 * time.Second), Quality: estimated, ErrorNs: clock.ErrorUnbounded})
		})
	}
}

func TestRTCNotReadWhenAlreadySynced(t *testing.T) {
	k := clocktest.NewKernel("boot-g", 4*time.Second, realNow)
	k.SetSynced(true, time.Millisecond)
	rtc := clocktest.NewRTC(k, realNow.Add(-time.Hour)) // wrong, must not be used
	s := newSystem(t, k, clock.WithRTC(rtc))
	if st := s.Now(); st.Quality != synced || st.WallNs != ns(realNow) {
		t.Errorf("stamp = %+v, want synced at realNow", st)
	}
}

func TestRTCSetAfterSync(t *testing.T) {
	k := clocktest.NewKernel("boot-h", 4*time.Second, epoch.Add(4*time.Second))
	rtc := clocktest.NewRTC(k, realNow)
	rtc.Invalidate()
	s := newSystem(t, k, clock.WithRTC(rtc))

	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if w := rtc.Writes(); len(w) != 0 {
		t.Fatalf("rtc written before sync: %v", w)
	}
	k.SyncTo(realNow, time.Millisecond)
	mustCheck := func() {
		t.Helper()
		if err := s.Check(); err != nil {
			t.Fatal(err)
		}
	}
	mustCheck()
	mustCheck() // not due again
	k.Advance(59 * time.Minute)
	mustCheck() // not due yet
	k.Advance(time.Minute)
	mustCheck() // hourly
	k.Advance(time.Second)
	k.Step(-10 * time.Minute)
	mustCheck() // after a step, at once
	want := []time.Time{realNow, realNow.Add(time.Hour), realNow.Add(time.Hour + time.Second - 10*time.Minute)}
	got := rtc.Writes()
	if len(got) != len(want) {
		t.Fatalf("rtc writes = %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("write %d = %v, want %v", i, got[i], want[i])
		}
	}
	if v, err := rtc.Time(); err != nil || !v.Equal(want[2]) {
		t.Errorf("rtc reads %v, %v; want %v (valid again after the write)", v, err, want[2])
	}
	if st := s.Stats(); st.RTCWrites != 3 || st.RTCWriteErrors != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestRTCWriteFailureIsRetried(t *testing.T) {
	k := clocktest.NewKernel("boot-i", 4*time.Second, epoch.Add(4*time.Second))
	rtc := clocktest.NewRTC(k, realNow)
	s := newSystem(t, k, clock.WithRTC(rtc))
	k.SyncTo(realNow, time.Millisecond)
	rtc.FailWrites(errors.New("i2c: bus busy"))
	if err := s.Check(); err == nil || !strings.Contains(err.Error(), "bus busy") {
		t.Fatalf("Check = %v, want the write error", err)
	}
	rtc.FailWrites(nil)
	k.Advance(time.Second)
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.RTCWrites != 1 || st.RTCWriteErrors != 1 || len(rtc.Writes()) != 1 {
		t.Errorf("stats = %+v, writes = %v", st, rtc.Writes())
	}
}

func TestLostSyncKeepsOffset(t *testing.T) {
	k, s, _ := syncedSystem(t)
	k.SetSynced(false, 16*time.Second)
	k.Advance(1000 * time.Second)
	k.Step(-24 * time.Hour) // someone sets the clock by hand; ignored
	st := s.Now()
	// error = offset error + 500 ppm of the 1000 s since the last sync.
	assertStamp(t, "after losing sync", st, clock.Stamp{BootID: "boot-c", MonoNs: int64(1100 * time.Second),
		WallNs: ns(realNow.Add(1000 * time.Second)), Quality: corrected, ErrorNs: int64(10*time.Millisecond + 500*time.Millisecond)})
	if s.Stats().Steps != 0 {
		t.Errorf("a manual change while unsynchronised counted as a step")
	}
	// The daemon syncs again to the true time: no step, offset unchanged.
	k.Step(24 * time.Hour)
	k.SetSynced(true, 2*time.Millisecond)
	if st := s.Now(); st.Quality != synced || s.Stats().Steps != 0 || s.Stats().Syncs != 2 {
		t.Errorf("resync: %+v, stats %+v", st, s.Stats())
	}
}

func TestAdjtimexDenied(t *testing.T) {
	k := clocktest.NewKernel("boot-j", time.Second, epoch.Add(time.Second))
	k.FailSync(errors.New("operation not permitted"))
	_, err := clock.NewSystem(clock.WithKernel(k), clock.WithLogger(quiet()))
	if err == nil || !strings.Contains(err.Error(), "ProtectClock") {
		t.Fatalf("NewSystem = %v, want an error that names ProtectClock", err)
	}

	k.FailSync(nil)
	k.SyncTo(realNow, time.Millisecond)
	s := newSystem(t, k)
	k.FailSync(errors.New("operation not permitted"))
	k.Advance(time.Second)
	st := s.Now()
	if st.Quality != corrected || st.WallNs != ns(realNow.Add(time.Second)) {
		t.Errorf("stamp with adjtimex failing = %+v, want corrected from the learned offset", st)
	}
	if s.Stats().KernelErrors != 1 {
		t.Errorf("kernel errors = %d, want 1", s.Stats().KernelErrors)
	}
}

func TestConcurrentUse(t *testing.T) {
	k := clocktest.NewKernel("boot-k", time.Second, epoch.Add(time.Second))
	s := newSystem(t, k, clock.WithRTC(clocktest.NewRTC(k, realNow)))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k.Advance(time.Millisecond)
				if g == 0 && i == 100 {
					k.SyncTo(realNow.Add(time.Minute), time.Millisecond)
				}
				st := s.Now()
				if c := s.Correct(st); c.MonoNs != st.MonoNs || c.BootID != st.BootID {
					t.Errorf("Correct changed identity: %+v -> %+v", st, c)
				}
				_ = s.Check()
			}
		}()
	}
	wg.Wait()
	if q := s.Quality(); q != synced {
		t.Errorf("quality = %v, want synced", q.Name())
	}
}
