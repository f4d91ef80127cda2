package collector

import (
	"io"
	"net/http"
	"strings"
	"testing"

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
	// 10 s.
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
