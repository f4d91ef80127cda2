package analytics

import "github.com/prometheus/client_golang/prometheus"

// metrics are the runner's Prometheus series. Every label has a fixed,
// small set of values: kind (spike, sustained_high, sustained_low) and
// model (seasonal, naive).
type metrics struct {
	anomalies *prometheus.CounterVec
	absErr    *prometheus.CounterVec
	pctErr    *prometheus.CounterVec
	errN      *prometheus.CounterVec
	pctN      *prometheus.CounterVec
	cycles    prometheus.Counter
	refits    prometheus.Counter
	failures  prometheus.Counter
	deferred  prometheus.Gauge
}

// The model label values of the forecast error series.
const (
	modelSeasonal = "seasonal"
	modelNaive    = "naive"
)

func newMetrics() *metrics {
	m := &metrics{
		anomalies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gridedge_analytics_anomalies_total",
			Help: "Windows newly flagged anomalous, by kind (spike, sustained_high, sustained_low).",
		}, []string{"kind"}),
		absErr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gridedge_analytics_forecast_abs_error_sum",
			Help: "Sum of |actual - forecast| over the windows whose actual arrived (model: seasonal = the forecast pipeline, naive = the same window a day earlier). MAE = rate(this) / rate(gridedge_analytics_forecast_windows_total).",
		}, []string{"model"}),
		errN: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gridedge_analytics_forecast_windows_total",
			Help: "Windows whose actual was compared with a forecast.",
		}, []string{"model"}),
		pctErr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gridedge_analytics_forecast_abs_percentage_error_sum",
			Help: "Sum of |actual - forecast| / |actual| × 100 over the compared windows with a non-zero actual. MAPE = rate(this) / rate(gridedge_analytics_forecast_percentage_windows_total).",
		}, []string{"model"}),
		pctN: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gridedge_analytics_forecast_percentage_windows_total",
			Help: "Compared windows with a non-zero actual (the MAPE denominator).",
		}, []string{"model"}),
		cycles:   prometheus.NewCounter(prometheus.CounterOpts{Name: "gridedge_analytics_cycles_total", Help: "Refit cycles run."}),
		refits:   prometheus.NewCounter(prometheus.CounterOpts{Name: "gridedge_analytics_refits_total", Help: "Devices refitted (their bands and forecasts recomputed)."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "gridedge_analytics_refit_failures_total", Help: "Device refits that failed (store read or write); retried next cycle."}),
		deferred: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gridedge_analytics_deferred_devices", Help: "Devices with new data left for a later cycle by max_devices_per_cycle in the last cycle."}),
	}
	for _, k := range Kinds() {
		m.anomalies.WithLabelValues(k.String())
	}
	for _, model := range []string{modelSeasonal, modelNaive} {
		m.absErr.WithLabelValues(model)
		m.errN.WithLabelValues(model)
		m.pctErr.WithLabelValues(model)
		m.pctN.WithLabelValues(model)
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.anomalies, m.absErr, m.errN, m.pctErr, m.pctN, m.cycles, m.refits, m.failures, m.deferred}
}

// errorSums accumulates forecast errors of one device's refit until its
// results are committed.
type errorSums struct {
	abs, pct float64
	n, pctN  int
}

func (e *errorSums) add(actual, forecast float64) {
	d := actual - forecast
	if d < 0 {
		d = -d
	}
	e.abs += d
	e.n++
	if actual != 0 {
		a := actual
		if a < 0 {
			a = -a
		}
		e.pct += d / a * 100
		e.pctN++
	}
}

func (m *metrics) addErrors(model string, e errorSums) {
	m.absErr.WithLabelValues(model).Add(e.abs)
	m.errN.WithLabelValues(model).Add(float64(e.n))
	m.pctErr.WithLabelValues(model).Add(e.pct)
	m.pctN.WithLabelValues(model).Add(float64(e.pctN))
}
