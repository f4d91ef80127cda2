package fleet

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gridedge/gridedge/cloud/store"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func source(devs []Device, scans *int) Source {
	return func(fn func(Device) error) error {
		*scans++
		for _, d := range devs {
			if err := fn(d); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestSummaryCountsStatesClockAndBacklog(t *testing.T) {
	devs := []Device{
		{ID: "a", LastContact: t0.Add(-time.Second), HasStatus: true, Online: true, ClockQuality: "synced", Buffered: 5},
		{ID: "b", LastContact: t0.Add(-4 * time.Minute), HasStatus: true, Online: true, ClockQuality: "estimated",
			UnsyncedSince: t0.Add(-90 * time.Minute), Buffered: 7},
		{ID: "c", LastContact: t0.Add(-10 * time.Second), HasStatus: true, Online: true, ClockQuality: "rtc", UnsyncedSince: t0.Add(-time.Hour)},
		{ID: "d", LastContact: t0.Add(-time.Second), HasStatus: true, Online: false, ClockQuality: "estimated",
			UnsyncedSince: t0.Add(-48 * time.Hour), Buffered: 1000}, // said goodbye: offline, not counted
		{ID: "e", LastContact: t0.Add(-6 * time.Minute), HasStatus: true, Online: true}, // silent beyond 5 min
		{ID: "f", LastContact: t0.Add(-time.Minute)},                                    // batches only, no status yet
		{ID: "g", LastContact: t0.Add(-time.Minute), HasStatus: true, Online: true, ClockQuality: "weird"},
	}
	var scans int
	c := New(source(devs, &scans), WithClock(func() time.Time { return t0 }))
	s := c.Summary()
	if s.Online != 5 || s.Offline != 2 {
		t.Fatalf("online %d offline %d, want 5 and 2", s.Online, s.Offline)
	}
	want := map[string]int{"synced": 1, "estimated": 1, "rtc": 1, "unknown": 2}
	for _, q := range Qualities {
		if s.Clock[q] != want[q] {
			t.Errorf("clock %s: %d, want %d", q, s.Clock[q], want[q])
		}
	}
	if s.UnsyncedLongest != 90*time.Minute {
		t.Errorf("longest unsynced %v, want 1h30m (the offline device's 48 h does not count)", s.UnsyncedLongest)
	}
	if s.Buffered != 12 {
		t.Errorf("buffered %d, want 12 (online devices only)", s.Buffered)
	}
	if len(s.OfflineListed) != 2 || s.OfflineListed[0].ID != "d" || s.OfflineListed[1].ID != "e" || s.OfflineUnlisted != 0 {
		t.Errorf("offline listed %+v unlisted %d, want d then e", s.OfflineListed, s.OfflineUnlisted)
	}
}

// The per-device series are bounded by the limit, whatever the fleet's
// size, and list the devices that went offline most recently.
func TestOfflineSeriesAreBounded(t *testing.T) {
	const n, limit = 50_000, 100
	devs := make([]Device, n)
	for i := range devs {
		devs[i] = Device{ID: fmt.Sprintf("dev-%05d", i), Site: "s", HasStatus: true, Online: i%2 == 0,
			LastContact: t0.Add(-time.Duration(n-i) * time.Second), ClockQuality: "synced"}
	}
	var scans int
	c := New(source(devs, &scans), WithClock(func() time.Time { return t0 }), WithDeviceLimit(limit))
	s := c.Summary()
	// Odd devices said they are offline; even ones are online only if
	// heard from within the last 5 minutes (the last 300).
	if s.Online != 150 || s.Offline != n-150 {
		t.Fatalf("online %d offline %d, want 150 and %d", s.Online, s.Offline, n-150)
	}
	if len(s.OfflineListed) != limit || s.OfflineUnlisted != s.Offline-limit {
		t.Fatalf("listed %d unlisted %d of %d offline, want %d listed", len(s.OfflineListed), s.OfflineUnlisted, s.Offline, limit)
	}
	// The most recent offline device is an odd one near the end.
	if s.OfflineListed[0].ID != fmt.Sprintf("dev-%05d", n-1) {
		t.Errorf("first listed %s, want the most recently heard from", s.OfflineListed[0].ID)
	}
	for i := 1; i < len(s.OfflineListed); i++ {
		if s.OfflineListed[i].LastContact.After(s.OfflineListed[i-1].LastContact) {
			t.Fatalf("listed out of order at %d", i)
		}
	}
	got := testutil.CollectAndCount(c, "gridedge_collector_device_offline_seconds")
	if got != limit {
		t.Fatalf("%d per-device series, want %d", got, limit)
	}
	if total := testutil.CollectAndCount(c); total != limit+2+len(Qualities)+5 {
		t.Fatalf("%d series in all, want %d", total, limit+2+len(Qualities)+5)
	}
	none := New(source(devs, &scans), WithClock(func() time.Time { return t0 }), WithDeviceLimit(0))
	if got := testutil.CollectAndCount(none, "gridedge_collector_device_offline_seconds"); got != 0 {
		t.Fatalf("limit 0: %d per-device series", got)
	}
}

func TestScanIsReusedWithinTheInterval(t *testing.T) {
	now := t0
	var scans int
	c := New(source([]Device{{ID: "a", LastContact: t0, HasStatus: true, Online: true}}, &scans),
		WithClock(func() time.Time { return now }), WithMinInterval(10*time.Second))
	if scans != 0 {
		t.Fatal("scanned before anybody asked")
	}
	c.Summary()
	now = now.Add(9 * time.Second)
	testutil.CollectAndCount(c)
	if scans != 1 {
		t.Fatalf("%d scans within the interval, want 1", scans)
	}
	now = now.Add(2 * time.Second)
	c.Summary()
	if scans != 2 {
		t.Fatalf("%d scans after the interval, want 2", scans)
	}
}

func TestScanErrorKeepsThePreviousSummary(t *testing.T) {
	fail := false
	src := func(fn func(Device) error) error {
		if fail {
			return errors.New("store closed")
		}
		return fn(Device{ID: "a", LastContact: t0, HasStatus: true, Online: true, ClockQuality: "synced"})
	}
	now := t0
	c := New(src, WithClock(func() time.Time { return now }), WithMinInterval(time.Second))
	c.Summary()
	fail, now = true, now.Add(time.Minute)
	if s := c.Summary(); s.Online != 1 {
		t.Fatalf("after a failed scan online %d, want the previous 1", s.Online)
	}
	const want = `
# HELP gridedge_collector_devices_scan_errors_total Scans of the known devices that failed (the previous summary is served).
# TYPE gridedge_collector_devices_scan_errors_total counter
gridedge_collector_devices_scan_errors_total 2
`
	// Collect scans once more (and fails once more).
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "gridedge_collector_devices_scan_errors_total"); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkScan50k(b *testing.B) {
	devs := make([]Device, 50_000)
	for i := range devs {
		devs[i] = Device{ID: fmt.Sprintf("dev-%05d", i), HasStatus: true, Online: i%10 != 0, LastContact: t0, ClockQuality: "synced"}
	}
	var scans int
	c := New(source(devs, &scans), WithClock(func() time.Time { return t0 }), WithMinInterval(0))
	for b.Loop() {
		c.Summary()
	}
}

// A device name Prometheus cannot carry is left out, not a failed scrape.
func TestBadLabelValueIsLeftOut(t *testing.T) {
	var scans int
	c := New(source([]Device{
		{ID: "bad-\xff", Site: "s", LastContact: t0.Add(-time.Hour), HasStatus: true},
		{ID: "good", Site: "s", LastContact: t0.Add(-time.Hour), HasStatus: true},
	}, &scans), WithClock(func() time.Time { return t0 }))
	if n := testutil.CollectAndCount(c, "gridedge_collector_device_offline_seconds"); n != 1 {
		t.Fatalf("%d offline series, want only the valid one", n)
	}
}

// Online: the status's word, then contact within the threshold (inclusive);
// no status needs batches; never heard is offline. FromStore takes the
// later of the last batch and the last status as the contact.
func TestOnlineRule(t *testing.T) {
	now := t0
	for _, c := range []struct {
		name string
		d    Device
		want bool
	}{
		{"status online, heard now", Device{HasStatus: true, Online: true, LastContact: now}, true},
		{"status online, heard at the threshold", Device{HasStatus: true, Online: true, LastContact: now.Add(-time.Minute)}, true},
		{"status online, unheard past it", Device{HasStatus: true, Online: true, LastContact: now.Add(-time.Minute - 1)}, false},
		{"status offline, heard now", Device{HasStatus: true, LastContact: now}, false},
		{"no status, batches now", Device{LastContact: now}, true},
		{"never heard", Device{}, false},
	} {
		if got := Online(c.d, now, time.Minute); got != c.want {
			t.Errorf("%s: Online = %v, want %v", c.name, got, c.want)
		}
	}
	d := FromStore("d", &store.DeviceInfo{Site: "s", LastSeen: now.Add(-time.Hour)}, &store.Status{Online: true, Received: now, ClockQuality: "synced"})
	if d.LastContact != now || !d.HasStatus || !d.Online || d.Site != "s" || !Online(d, now, time.Minute) {
		t.Errorf("FromStore = %+v: want the status's time as last contact, online", d)
	}
	if d := FromStore("d", nil, &store.Status{Site: "s2", Received: now}); d.Site != "s2" || d.Online {
		t.Errorf("FromStore without a record = %+v", d)
	}
}
