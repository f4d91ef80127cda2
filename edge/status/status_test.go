package status

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func sample() Snapshot {
	return Snapshot{
		DeviceID: "gw-1", Site: "home", AgentVersion: "v1", WrittenAt: time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC),
		Interval: Duration(5 * time.Second), ClockQuality: "synced", SeqEpoch: "00ff", NextSeq: 42, Connected: true,
		Buffered: 7, OldestUnsent: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC), DiskBytes: 3 << 20, QuotaBytes: 256 << 20,
		Generated: 100, Sent: 99, Acked: 93, Dropped: 2, Summarised: 5, SenseErrors: map[string]uint64{"mains": 0, "heat": 3},
	}
}

func TestWriteReadFormat(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "is the agent running") {
		t.Fatalf("missing file: %v", err)
	}
	in := sample()
	if err := Write(dir, in); err != nil {
		t.Fatal(err)
	}
	out, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if out.NextSeq != 42 || out.SenseErrors["heat"] != 3 || !out.OldestUnsent.Equal(in.OldestUnsent) || out.Interval != in.Interval {
		t.Fatalf("round trip: %+v", out)
	}
	var buf bytes.Buffer
	out.Format(&buf, in.WrittenAt.Add(2*time.Second))
	for _, want := range []string{"gw-1", "running", "7 readings unacked", "1h0m2s ago", "3.0 MiB", "heat=3 mains=0", "summarised 5, dropped 2"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, buf.String())
		}
	}
	buf.Reset()
	out.Format(&buf, in.WrittenAt.Add(time.Minute))
	if !strings.Contains(buf.String(), "NOT RUNNING") {
		t.Fatalf("stale status not flagged:\n%s", buf.String())
	}
}

func TestCollector(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(sample)); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[name] = m.GetGauge().GetValue()
			}
		}
	}
	want := map[string]float64{
		"gridedge_agent_readings_generated_total":          100,
		"gridedge_agent_readings_acked_total":              93,
		"gridedge_agent_readings_dropped_total":            2,
		"gridedge_agent_sense_errors_total{channel=heat}":  3,
		"gridedge_agent_sense_errors_total{channel=mains}": 0,
		"gridedge_agent_buffered_readings":                 7,
		"gridedge_agent_oldest_unsent_timestamp_seconds":   float64(sample().OldestUnsent.Unix()),
		"gridedge_agent_mqtt_connected":                    1,
		"gridedge_agent_clock_quality{quality=synced}":     1,
		"gridedge_agent_clock_quality{quality=estimated}":  0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}
