package status

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes a Snapshot source as Prometheus metrics. It reads a
// fresh snapshot on every scrape instead of keeping its own counters, so
// /metrics, status.json and the MQTT status never disagree.
type Collector struct {
	snapshot func() Snapshot
	descs    map[string]*prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

type metricDef struct {
	name, help string
	kind       prometheus.ValueType
	labels     []string
}

var metricDefs = []metricDef{
	{"gridedge_agent_readings_generated_total", "Readings appended to the buffer.", prometheus.CounterValue, nil},
	{"gridedge_agent_readings_sent_total", "Readings published for the first time.", prometheus.CounterValue, nil},
	{"gridedge_agent_readings_resent_total", "Readings published again after an ack timeout.", prometheus.CounterValue, nil},
	{"gridedge_agent_readings_acked_total", "Readings the collector acknowledged (deleted from the buffer).", prometheus.CounterValue, nil},
	{"gridedge_agent_readings_dropped_total", "Readings dropped to stay within the disk quota.", prometheus.CounterValue, nil},
	{"gridedge_agent_readings_summarised_total", "Readings folded into per-minute summaries to stay within the disk quota.", prometheus.CounterValue, nil},
	{"gridedge_agent_append_errors_total", "Readings lost because the buffer refused them (e.g. disk full).", prometheus.CounterValue, nil},
	{"gridedge_agent_sense_errors_total", "Failed sensor reads per channel.", prometheus.CounterValue, []string{"channel"}},
	{"gridedge_agent_buffered_readings", "Readings in the buffer, not yet acked.", prometheus.GaugeValue, nil},
	{"gridedge_agent_oldest_unsent_timestamp_seconds", "Wall time of the oldest unacked reading (0 when none).", prometheus.GaugeValue, nil},
	{"gridedge_agent_buffer_disk_bytes", "Disk space used by the buffer directory.", prometheus.GaugeValue, nil},
	{"gridedge_agent_buffer_live_bytes", "Estimated bytes of readings held; the quota applies to it.", prometheus.GaugeValue, nil},
	{"gridedge_agent_buffer_quota_bytes", "Configured buffer disk quota.", prometheus.GaugeValue, nil},
	{"gridedge_agent_buffer_disk_full", "1 while the buffer's file system is below the free-space reserve (new readings refused).", prometheus.GaugeValue, nil},
	{"gridedge_agent_mqtt_connected", "1 when connected to the broker.", prometheus.GaugeValue, nil},
	{"gridedge_agent_clock_quality", "1 for the current clock quality (synced, rtc, corrected, estimated).", prometheus.GaugeValue, []string{"quality"}},
}

// NewCollector returns a collector reading snapshots from fn.
func NewCollector(fn func() Snapshot) *Collector {
	c := &Collector{snapshot: fn, descs: map[string]*prometheus.Desc{}}
	for _, d := range metricDefs {
		c.descs[d.name] = prometheus.NewDesc(d.name, d.help, d.labels, nil)
	}
	return c
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range metricDefs {
		ch <- c.descs[d.name]
	}
}

// Collect takes one snapshot and sends its metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	emit := func(name string, v float64, labels ...string) {
		for _, d := range metricDefs {
			if d.name == name {
				ch <- prometheus.MustNewConstMetric(c.descs[name], d.kind, v, labels...)
				return
			}
		}
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	emit("gridedge_agent_readings_generated_total", float64(s.Generated))
	emit("gridedge_agent_readings_sent_total", float64(s.Sent))
	emit("gridedge_agent_readings_resent_total", float64(s.Resent))
	emit("gridedge_agent_readings_acked_total", float64(s.Acked))
	emit("gridedge_agent_readings_dropped_total", float64(s.Dropped))
	emit("gridedge_agent_readings_summarised_total", float64(s.Summarised))
	emit("gridedge_agent_append_errors_total", float64(s.AppendErrors))
	for ch, n := range s.SenseErrors {
		emit("gridedge_agent_sense_errors_total", float64(n), ch)
	}
	emit("gridedge_agent_buffered_readings", float64(s.Buffered))
	oldest := 0.0
	if !s.OldestUnsent.IsZero() {
		oldest = float64(s.OldestUnsent.UnixNano()) / 1e9
	}
	emit("gridedge_agent_oldest_unsent_timestamp_seconds", oldest)
	emit("gridedge_agent_buffer_disk_bytes", float64(s.DiskBytes))
	emit("gridedge_agent_buffer_live_bytes", float64(s.LiveBytes))
	emit("gridedge_agent_buffer_quota_bytes", float64(s.QuotaBytes))
	emit("gridedge_agent_buffer_disk_full", b2f(s.DiskFull))
	emit("gridedge_agent_mqtt_connected", b2f(s.Connected))
	for _, q := range []string{"synced", "rtc", "corrected", "estimated"} {
		emit("gridedge_agent_clock_quality", b2f(s.ClockQuality == q), q)
	}
}
