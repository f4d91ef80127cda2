package household

import (
	"testing"
	"time"
)

func TestHouseholdModel(t *testing.T) {
	a, b := New(1, 1), New(1, 2)
	day := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	var energyA, differ float64
	for m := 0; m < 24*60; m++ {
		tm := day.Add(time.Duration(m) * time.Minute)
		mains, k, l, h := a.Power(tm)
		if m2, _, _, _ := a.Power(tm); m2 != mains {
			t.Fatalf("not deterministic at %v", tm)
		}
		if k < 0 || l < 0 || h < 0 || mains < k+l+h {
			t.Fatalf("%v: mains %v < sub-meters %v+%v+%v", tm, mains, k, l, h)
		}
		if bm, _, _, _ := b.Power(tm); bm != mains {
			differ++
		}
		energyA += mains / 60
	}
	// A plausible home uses a few to a few tens of kWh a day.
	if energyA < 3000 || energyA > 40000 {
		t.Fatalf("daily energy %.0f Wh is implausible", energyA)
	}
	if differ < 1000 {
		t.Fatalf("meters 1 and 2 are nearly identical (%v minutes differ)", differ)
	}
}
