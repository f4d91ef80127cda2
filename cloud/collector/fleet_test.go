package collector

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/fleet"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/wire"
)

// The fleet gauges on /metrics follow the devices' statuses: one online
// with an unsynced clock, one that said goodbye (listed by name).
func TestFleetMetricsFollowStatuses(t *testing.T) {
	b := mqtttest.Start(t)
	c, _ := start(t, testConfig(t, b.URL(), t.TempDir()))
	ag := newAgent(t, b.URL(), "agent", nil)
	for _, st := range []*wire.Status{
		{SchemaVersion: wire.SchemaVersion, DeviceId: "dev-1", Online: true, ClockQuality: wire.TimeQuality_TIME_QUALITY_ESTIMATED, BufferedReadings: 42},
		{SchemaVersion: wire.SchemaVersion, DeviceId: "dev-2", Online: false, ClockQuality: wire.TimeQuality_TIME_QUALITY_SYNCED},
	} {
		p, _ := wire.EncodeStatus(st)
		if tok := ag.client.Publish("gridedge/v1/s/"+st.DeviceId+"/status", 1, true, p); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	// Scrape only once both are stored: a scrape's summary is reused for
	// fleetRefresh.
	waitFor(t, "both statuses stored", func() bool {
		_, ok1, _ := c.Store().Status("dev-1")
		_, ok2, _ := c.Store().Status("dev-2")
		return ok1 && ok2
	})
	resp, err := http.Get("http://" + c.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`gridedge_collector_devices{state="online"} 1`,
		`gridedge_collector_devices{state="offline"} 1`,
		`gridedge_collector_devices_clock{quality="estimated"} 1`,
		`gridedge_collector_devices_clock{quality="synced"} 0`,
		`gridedge_collector_devices_buffered_readings 42`,
		`gridedge_collector_device_offline_seconds{device="dev-2",site="s"}`,
		`gridedge_collector_devices_offline_unlisted 0`,
		`gridedge_collector_acks_total{outcome="failed"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(body), `gridedge_collector_devices_clock_unsynced_longest_seconds 0`+"\n") {
		t.Errorf("dev-1's clock is unsynced, yet the longest unsynced time is 0")
	}
}

// BenchmarkFleetScan50k measures one fleet summary over a store holding
// 50,000 devices with a status each (one scrape's cost, at most once per
// 10 s).
func BenchmarkFleetScan50k(b *testing.B) {
	st, err := store.Open(filepath.Join(b.TempDir(), "store"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	for chunk := range 50 {
		batch := st.NewBatch(0)
		for i := range 1000 {
			id := fmt.Sprintf("dev-%05d", chunk*1000+i)
			if err := batch.PutDevice(&store.DeviceInfo{ID: id, Site: "s", LastSeen: now, ReadingsStored: 1e6,
				Series: []store.SeriesID{{Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER}, {Channel: "mains", Quantity: wire.Quantity_QUANTITY_ENERGY}}}); err != nil {
				b.Fatal(err)
			}
			if err := batch.PutStatus(store.Status{Device: id, Site: "s", Received: now, Online: i%10 != 0, ClockQuality: "synced", BufferedReadings: 3}); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	fc := fleet.New(fleetSource(st), fleet.WithMinInterval(0), fleet.WithClock(func() time.Time { return now }))
	var s fleet.Summary
	for b.Loop() {
		s = fc.Summary()
	}
	if s.Online+s.Offline != 50_000 {
		b.Fatalf("%d devices", s.Online+s.Offline)
	}
}
