package api

import (
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/fleet"
	"github.com/gridedge/gridedge/cloud/store"
)

// The dashboard calls a device online by the fleet gauges' rule
// (fleet.Online with device_offline_after): a status saying online is not
// enough once the device has gone unheard for longer; a device without a
// status is online while its batches come. Its count and every row agree
// with the rule applied to the same store.
func TestDashboardOnlineIsTheFleetRule(t *testing.T) {
	now := time.Now()
	const offlineAfter = 5 * time.Minute
	st := dashStore(t, []keyed{
		statusRecord(t, "site-a", "fresh-online", true, "UTC", now),
		statusRecord(t, "site-a", "stale-online", true, "UTC", now.Add(-2*offlineAfter)), // said online, unheard since
		statusRecord(t, "site-b", "stale-online-2", true, "UTC", now.Add(-offlineAfter-time.Minute)),
		statusRecord(t, "site-a", "said-offline", false, "UTC", now),
		powerRecord(t, "no-status", []string{"mains"}, now, 10*time.Second),
	}, nil)
	srv := httptest.NewServer(New(st, WithDefaultTimeZone("UTC"), WithOfflineAfter(offlineAfter)))
	t.Cleanup(srv.Close)
	body := get(t, srv, "/", 200, nil)

	want := map[string]bool{"fresh-online": true, "stale-online": false, "stale-online-2": false, "said-offline": false, "no-status": true}
	online := 0
	err := st.Devices("", func(id string, info *store.DeviceInfo, s *store.Status) error {
		if got := fleet.Online(fleet.FromStore(id, info, s), time.Now(), offlineAfter); got != want[id] {
			t.Errorf("fleet.Online(%s) = %v, want %v", id, got, want[id])
		}
		if want[id] {
			online++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, `id="n-online">2<`) || online != 2 {
		t.Errorf("dashboard online count: want 2 (the rule counts %d)", online)
	}
	for id, on := range want {
		row := regexp.MustCompile(`<tr class="device[^"]*"><td class="id"><a href="[^"]*">` + id + `</a></td><td class="id">[^<]*</td><td><span class="(on|off)">`).FindStringSubmatch(body)
		if row == nil {
			t.Errorf("no row for %s", id)
			continue
		}
		if (row[1] == "on") != on {
			t.Errorf("%s shown %s, want online=%v", id, row[1], on)
		}
	}
}
