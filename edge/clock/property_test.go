package clock_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gridedge/gridedge/edge/clock"
	"github.com/gridedge/gridedge/edge/clock/clocktest"
	"github.com/gridedge/gridedge/shared/wire"
)

// TestRandomHistories drives the clock through random sequences of time
// passing, syncs, losses of sync and steps, and checks what must hold after
// any history: once a sync happened, correcting every stamp of the boot puts
// them on one timeline (wall differences equal monotonic differences), and
// no stamp is ever better than its quality allows.
func TestRandomHistories(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 42))
		k := clocktest.NewKernel("boot-p", time.Duration(rng.IntN(60)+1)*time.Second, epoch.Add(time.Duration(rng.IntN(1e6))*time.Second))
		var opts []clock.Option
		if rng.IntN(2) == 0 {
			opts = append(opts, clock.WithRTC(clocktest.NewRTC(k, realNow)))
		}
		s := newSystem(t, k, opts...)
		var stamps []clock.Stamp
		everSynced := false
		for range 60 {
			switch rng.IntN(6) {
			case 0, 1:
				k.Advance(time.Duration(rng.Int64N(int64(10 * time.Minute))))
			case 2:
				k.SyncTo(realNow.Add(time.Duration(rng.Int64N(int64(48*time.Hour)))), time.Duration(rng.IntN(50)+1)*time.Millisecond)
				everSynced = true
			case 3:
				k.SetSynced(false, 16*time.Second)
			case 4:
				k.Step(time.Duration(rng.Int64N(int64(4*time.Hour))) - 2*time.Hour)
			case 5:
				_ = s.Check()
			}
			st := s.Now()
			if st.ErrorNs < 0 || st.BootID != "boot-p" {
				t.Fatalf("seed %d: bad stamp %+v", seed, st)
			}
			if len(stamps) > 0 && st.MonoNs < stamps[len(stamps)-1].MonoNs {
				t.Fatalf("seed %d: monotonic time went back", seed)
			}
			stamps = append(stamps, st)
		}
		var fixed []clock.Stamp
		for _, st := range stamps {
			c := s.Correct(st)
			if c.BootID != st.BootID || c.MonoNs != st.MonoNs {
				t.Fatalf("seed %d: Correct changed identity %+v -> %+v", seed, st, c)
			}
			if !everSynced && c != st {
				t.Fatalf("seed %d: corrected %+v without any sync", seed, st)
			}
			fixed = append(fixed, c)
		}
		if !everSynced {
			continue
		}
		for i, c := range fixed {
			if c.Quality == wire.TimeQuality_TIME_QUALITY_ESTIMATED || c.Quality == wire.TimeQuality_TIME_QUALITY_RTC {
				t.Fatalf("seed %d: stamp %d still %s after sync", seed, i, c.Quality.Name())
			}
			// Same timeline, up to the step threshold a synced stamp may
			// differ by without being moved.
			d := (c.WallNs - fixed[0].WallNs) - (c.MonoNs - fixed[0].MonoNs)
			if d < -2*int64(clock.DefaultStepThreshold) || d > 2*int64(clock.DefaultStepThreshold) {
				t.Fatalf("seed %d: stamp %d off the common timeline by %v", seed, i, time.Duration(d))
			}
		}
	}
}
