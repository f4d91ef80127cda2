package dataset

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridedge/gridedge/cloud/window"
)

// DefaultQualityDevices is how many devices get their own
// gridedge_dataset_device_* series (per dataset pipeline): the first ones
// seen. The fleet-level histograms cover every device.
const DefaultQualityDevices = 100

// otherDevices is the device label of the devices beyond the limit.
const otherDevices = "_other"

// QualityOption configures Quality.
type QualityOption func(*Quality)

// WithQualityDevices sets how many devices get per-device series (0: none,
// only the fleet-level histograms).
func WithQualityDevices(n int) QualityOption {
	return func(q *Quality) { q.maxDevices = max(n, 0) }
}

// Quality measures the datasets as the engine emits them, per final
// result (neither provisional nor retracted; a re-fired window counts
// again):
//
//   - time order: the share of a result's rows whose time is after the
//     previous row's (the first row counts as in order);
//   - merged share: state_merged / state_readings of a joined session.
//
// Exported as fleet-level histograms of the per-result shares by pipeline,
// and as per-device ratios of the running totals for at most
// DefaultQualityDevices devices (WithQualityDevices); the devices beyond
// are summed under device="_other". Cardinality: pipelines × (2 histograms
// + 2 × (devices + 1) gauges), whatever the fleet size.
type Quality struct {
	maxDevices int
	pipes      map[string]bool

	order, merged *prometheus.HistogramVec
	records       *prometheus.CounterVec
	descOrder     *prometheus.Desc
	descMerged    *prometheus.Desc

	mu      sync.Mutex
	devices map[string]int // devices with their own series
	totals  map[devKey]*totals
}

type devKey struct{ pipeline, device string }

type totals struct {
	rows, inOrder  float64
	state, mergedN float64
}

// NewQuality measures the datasets among pipes (see Specs).
func NewQuality(pipes []window.Pipeline, opts ...QualityOption) *Quality {
	q := &Quality{maxDevices: DefaultQualityDevices, pipes: map[string]bool{},
		devices: map[string]int{}, totals: map[devKey]*totals{}}
	for _, o := range opts {
		o(q)
	}
	for _, s := range Specs(pipes) {
		q.pipes[s.Pipeline] = true
	}
	buckets := []float64{0.5, 0.8, 0.85, 0.9, 0.95, 0.99, 1}
	q.order = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gridedge_dataset_result_time_order_ratio",
		Help: "Per final dataset result (session or snapshot): share of its rows in event-time order.", Buckets: buckets}, []string{"pipeline"})
	q.merged = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gridedge_dataset_result_merged_ratio",
		Help: "Per final joined session: share of its state readings merged into the per-second join.", Buckets: buckets}, []string{"pipeline"})
	q.records = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gridedge_dataset_results_total",
		Help: "Final dataset results measured (re-fires count again)."}, []string{"pipeline"})
	q.descOrder = prometheus.NewDesc("gridedge_dataset_device_time_order_ratio",
		"Share of a device's dataset rows in event-time order since start (first devices seen; the rest as device=\"_other\").", []string{"pipeline", "device"}, nil)
	q.descMerged = prometheus.NewDesc("gridedge_dataset_device_merged_ratio",
		"Share of a device's state readings merged into the join since start (first devices seen; the rest as device=\"_other\").", []string{"pipeline", "device"}, nil)
	return q
}

// Observe measures the dataset results among rs. Safe for concurrent use.
func (q *Quality) Observe(rs []window.Result) {
	for i := range rs {
		r := &rs[i]
		if !q.pipes[r.Pipeline] || r.Provisional || r.Retracted || len(r.Rows) == 0 {
			continue
		}
		inOrder := 1
		for j := 1; j < len(r.Rows); j++ {
			if r.Rows[j].TimeNs > r.Rows[j-1].TimeNs {
				inOrder++
			}
		}
		rows := len(r.Rows)
		q.records.WithLabelValues(r.Pipeline).Inc()
		q.order.WithLabelValues(r.Pipeline).Observe(float64(inOrder) / float64(rows))
		state, sok := r.Value("state_readings")
		merged, mok := r.Value("state_merged")
		hasShare := sok && mok && state > 0
		if hasShare {
			q.merged.WithLabelValues(r.Pipeline).Observe(merged / state)
		}
		q.mu.Lock()
		t := q.deviceTotals(r.Pipeline, r.Key.Device)
		t.rows += float64(rows)
		t.inOrder += float64(inOrder)
		if hasShare {
			t.state += state
			t.mergedN += merged
		}
		q.mu.Unlock()
	}
}

// deviceTotals returns the running totals of a device, or of "_other"
// past the device limit. Called with mu held.
func (q *Quality) deviceTotals(pipeline, device string) *totals {
	if _, ok := q.devices[device]; !ok {
		if len(q.devices) >= q.maxDevices {
			device = otherDevices
		} else {
			q.devices[device] = len(q.devices)
		}
	}
	k := devKey{pipeline, device}
	t := q.totals[k]
	if t == nil {
		t = &totals{}
		q.totals[k] = t
	}
	return t
}

// Describe implements prometheus.Collector.
func (q *Quality) Describe(ch chan<- *prometheus.Desc) {
	q.order.Describe(ch)
	q.merged.Describe(ch)
	q.records.Describe(ch)
	ch <- q.descOrder
	ch <- q.descMerged
}

// Collect implements prometheus.Collector.
func (q *Quality) Collect(ch chan<- prometheus.Metric) {
	q.order.Collect(ch)
	q.merged.Collect(ch)
	q.records.Collect(ch)
	q.mu.Lock()
	keys := make([]devKey, 0, len(q.totals))
	for k := range q.totals {
		keys = append(keys, k)
	}
	snap := make([]totals, len(keys))
	for i, k := range keys {
		snap[i] = *q.totals[k]
	}
	q.mu.Unlock()
	for i, k := range keys {
		t := snap[i]
		if t.rows > 0 {
			ch <- prometheus.MustNewConstMetric(q.descOrder, prometheus.GaugeValue, t.inOrder/t.rows, k.pipeline, k.device)
		}
		if t.state > 0 {
			ch <- prometheus.MustNewConstMetric(q.descMerged, prometheus.GaugeValue, t.mergedN/t.state, k.pipeline, k.device)
		}
	}
}
