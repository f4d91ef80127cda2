package window

import (
	"fmt"
	"testing"
)

// The table grows many times over 5,000 devices; every name must still be
// found at its own index and absent names must not be.
func TestDevTableFindsEveryDeviceAcrossGrowth(t *testing.T) {
	tab := newDevTable()
	var devs []device
	for i := range 5000 {
		name := fmt.Sprintf("meter-%d", i)
		if got := tab.find(name, devs); got != -1 {
			t.Fatalf("find(%q) before insert = %d, want -1", name, got)
		}
		devs = append(devs, device{name: name})
		tab.insert(name, int32(i), devs)
	}
	for i := range devs {
		// A fresh string: the lookup must compare contents, not pointers.
		name := fmt.Sprintf("meter-%d", i)
		if got := tab.find(name, devs); got != int32(i) {
			t.Fatalf("find(%q) = %d, want %d", name, got, i)
		}
	}
	for _, name := range []string{"", "meter-5000", "meter-01", "Meter-1"} {
		if got := tab.find(name, devs); got != -1 {
			t.Errorf("find(%q) = %d, want -1", name, got)
		}
	}
	if 2*tab.n > len(tab.slots) {
		t.Errorf("table %d/%d more than half full", tab.n, len(tab.slots))
	}
}
