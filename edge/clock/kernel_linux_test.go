//go:build linux

package clock_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/gridedge/gridedge/edge/clock"
)

// TestLinuxKernel reads the real kernel clocks: it checks the calls work on
// this architecture (Timex field widths differ on 32-bit ARM) and return
// plausible values, not any particular sync state.
func TestLinuxKernel(t *testing.T) {
	var k clock.LinuxKernel
	id, err := k.BootID()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(id) {
		t.Errorf("boot id %q is not a UUID", id)
	}
	m1, err := k.Boottime()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := k.Boottime()
	if err != nil {
		t.Fatal(err)
	}
	if m1 <= 0 || m2 < m1 {
		t.Errorf("CLOCK_BOOTTIME %d then %d: want positive and non-decreasing", m1, m2)
	}
	wall, err := k.Realtime()
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Duration(wall - time.Now().UnixNano()); d < -time.Minute || d > time.Minute {
		t.Errorf("CLOCK_REALTIME is %v away from time.Now", d)
	}
	st, err := k.Sync()
	if err != nil {
		t.Fatalf("adjtimex: %v", err)
	}
	if st.MaxError < 0 {
		t.Errorf("negative max error %v", st.MaxError)
	}
	t.Logf("boot %s synchronised=%v maxerror=%v", id, st.Synchronized, st.MaxError)

	s, err := clock.NewSystem()
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.Now(), s.Now()
	if a.BootID != id || b.MonoNs < a.MonoNs {
		t.Errorf("stamps %+v then %+v", a, b)
	}
}
