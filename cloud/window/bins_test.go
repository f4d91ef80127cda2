package window

import (
	"testing"
	"time"
	"unsafe"

	"github.com/gridedge/gridedge/shared/wire"
)

// A day window keeps a bin only for the 5-minute slots holding readings,
// in slot order whatever the arrival order, at 56 B each and with at most
// a quarter of spare room: 100 s of readings cost one bin, a whole day 288.
func TestBinsFollowTheSlotsWithReadings(t *testing.T) {
	if s := unsafe.Sizeof(bin{}); s != 56 {
		t.Fatalf("bin is %d B, docs/windowing.md says 56", s)
	}
	day := func(t *testing.T, every time.Duration, n int, shuffle bool) *win {
		t.Helper()
		e, err := New(DefaultPipelines())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).UnixNano() - int64(2*time.Hour) // Paris midnight
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		if shuffle { // reversed within each hour: out of order, within lateness
			for h := 0; h < n; h += 360 {
				for i, j := h, min(h+360, n)-1; i < j; i, j = i+1, j-1 {
					order[i], order[j] = order[j], order[i]
				}
			}
		}
		for _, i := range order {
			e.Apply(&Reading{Device: "d", Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER,
				TimeNs: start + int64(i)*int64(every), Value: 1, Seq: uint64(i + 1)})
		}
		for _, s := range e.series {
			if e.pipes[s.pipe].spec.Name == "energy_daily" {
				return s.wins[0]
			}
		}
		t.Fatal("no energy_daily window")
		return nil
	}
	if w := day(t, time.Second, 100, false); len(w.bins) != 1 || cap(w.bins) > 1 {
		t.Fatalf("100 s: %d bins, room for %d; want 1", len(w.bins), cap(w.bins))
	}
	for _, shuffle := range []bool{false, true} {
		w := day(t, 10*time.Second, 8640, shuffle)
		if len(w.bins) != 288 || cap(w.bins) > 288*5/4 {
			t.Fatalf("a day (out of order %v): %d bins, room for %d; want 288, room for at most 360", shuffle, len(w.bins), cap(w.bins))
		}
		for i := range w.bins {
			if b := &w.bins[i]; b.slot() != uint64(i) || b.n() != 30 {
				t.Fatalf("out of order %v: bin %d is slot %d with %d readings, want slot %d with 30", shuffle, i, b.slot(), b.n(), i)
			}
		}
	}
}
