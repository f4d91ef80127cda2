package clock_test

import (
	"testing"
	"time"

	"github.com/gridedge/gridedge/edge/clock"
	"github.com/gridedge/gridedge/edge/clock/clocktest"
)

// BenchmarkNowLinux measures one stamp from the real kernel: three
// clock_gettime calls (vDSO) and one adjtimex system call.
func BenchmarkNowLinux(b *testing.B) {
	s, err := clock.NewSystem(clock.WithLogger(quiet()))
	if err != nil {
		b.Skip(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Now()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "stamps/s")
}

// BenchmarkCorrect measures re-stamping a buffered reading at send time.
func BenchmarkCorrect(b *testing.B) {
	k := clocktest.NewKernel("boot-bench", time.Second, epoch.Add(time.Second))
	s, err := clock.NewSystem(clock.WithKernel(k), clock.WithLogger(quiet()))
	if err != nil {
		b.Fatal(err)
	}
	pre := s.Now()
	k.SyncTo(realNow, time.Millisecond)
	s.Now()
	b.ReportAllocs()
	for b.Loop() {
		s.Correct(pre)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "stamps/s")
}
