package analytics

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

// Store is what the runner reads and writes: the collector's store.
type Store interface {
	Devices(after string, fn func(id string, info *store.DeviceInfo, st *store.Status) error) error
	Results(q store.ResultQuery, fn func(*store.WindowResult) error) error
	NewBatch(p int) *store.Batch
}

// Option changes a Runner.
type Option func(*Runner)

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(r *Runner) { r.now = now } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(r *Runner) { r.log = l } }

// WithPartitioner names the store partition a device's results are
// committed under (default 0); the collector passes its readings-log
// placement so results follow their device's partition.
func WithPartitioner(f func(device string) int) Option { return func(r *Runner) { r.partition = f } }

// WithTicks replaces the Every ticker: a cycle runs on each receive (tests
// drive the schedule with a fake clock and no sleeps).
func WithTicks(c <-chan time.Time) Option { return func(r *Runner) { r.ticks = c } }

// WithCycleHook calls f after every cycle Run runs.
func WithCycleHook(f func(CycleStats)) Option { return func(r *Runner) { r.hook = f } }

// Runner refits the models of devices with new source results on a
// schedule, and writes their bands and forecasts as results. It keeps no
// model between cycles: per device only the newest reading time seen and
// the time of its last refit (about 80 bytes with the id).
type Runner struct {
	cfg       Config
	st        Store
	loc       *time.Location
	now       func() time.Time
	log       *slog.Logger
	partition func(string) int
	ticks     <-chan time.Time
	hook      func(CycleStats)
	m         *metrics
	anomNames []string
	fcNames   []string
	// devs and zones belong to the goroutine running the cycles.
	devs  map[string]*devState
	zones map[string]*time.Location
}

type devState struct {
	seen  int64 // the device's newest reading time at its last refit
	fitAt int64
}

// maxZones bounds the cache of loaded time zones.
const maxZones = 1024

// CycleStats is what one cycle did.
type CycleStats struct {
	At        time.Time
	Changed   int // devices with readings newer than their last refit
	Refitted  int
	Deferred  int // changed devices left for a later cycle
	Failed    int
	Scored    int // anomaly results written
	Flagged   int // of which anomalous
	Forecasts int // forecast results written (changed or new windows)
}

// New returns a runner of cfg over st.
func New(cfg Config, st Store, opts ...Option) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("analytics: %w", err)
	}
	loc, _ := time.LoadLocation(cfg.TimeZone)
	r := &Runner{cfg: cfg, st: st, loc: loc, now: time.Now, log: slog.Default(), partition: func(string) int { return 0 },
		m: newMetrics(), devs: map[string]*devState{}, zones: map[string]*time.Location{},
		anomNames: []string{"expected", "lower", "upper", "actual", "score", "anomaly", "kind"},
		fcNames:   []string{"expected", "lower", "upper"}}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// Metrics are the runner's Prometheus collectors.
func (r *Runner) Metrics() []prometheus.Collector { return r.m.collectors() }

// Run runs a cycle every Every (or on each WithTicks receive) until ctx
// ends. Between cycles it does nothing.
func (r *Runner) Run(ctx context.Context) error {
	ticks := r.ticks
	if ticks == nil {
		t := time.NewTicker(r.cfg.Every)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
		}
		st, err := r.Cycle(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("analytics cycle", "err", err)
		}
		if r.hook != nil {
			r.hook(st)
		}
	}
}

// Cycle refits up to MaxDevicesPerCycle devices that received readings
// since their last refit, least recently refitted first. A device whose
// refit fails is retried next cycle; the error returned is the first.
// Cycle must not run concurrently with itself or with Run.
func (r *Runner) Cycle(ctx context.Context) (CycleStats, error) {
	now := r.now()
	cs := CycleStats{At: now}
	type cand struct {
		id    string
		seen  int64
		fitAt int64
		zone  string
	}
	var cands []cand
	present := make(map[string]bool, len(r.devs))
	err := r.st.Devices("", func(id string, info *store.DeviceInfo, st *store.Status) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if info == nil {
			return nil
		}
		present[id] = true
		d := r.devs[id]
		if d != nil && d.seen == info.MaxEventNs {
			return nil
		}
		c := cand{id: id, seen: info.MaxEventNs}
		if d != nil {
			c.fitAt = d.fitAt
		}
		if st != nil {
			c.zone = st.TimeZone
		}
		cands = append(cands, c)
		return nil
	})
	if err != nil {
		return cs, fmt.Errorf("analytics: devices: %w", err)
	}
	for id := range r.devs {
		if !present[id] {
			delete(r.devs, id)
		}
	}
	r.m.cycles.Inc()
	cs.Changed = len(cands)
	slices.SortStableFunc(cands, func(a, b cand) int { return cmp.Compare(a.fitAt, b.fitAt) })
	if len(cands) > r.cfg.MaxDevicesPerCycle {
		cs.Deferred = len(cands) - r.cfg.MaxDevicesPerCycle
		cands = cands[:r.cfg.MaxDevicesPerCycle]
	}
	r.m.deferred.Set(float64(cs.Deferred))
	var first error
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return cs, err
		}
		ds, err := r.refit(c.id, r.zone(c.zone), now)
		if err != nil {
			cs.Failed++
			r.m.failures.Inc()
			if first == nil {
				first = err
			}
			continue
		}
		r.devs[c.id] = &devState{seen: c.seen, fitAt: now.UnixNano()}
		r.m.refits.Inc()
		cs.Refitted++
		cs.Scored += ds.Scored
		cs.Flagged += ds.Flagged
		cs.Forecasts += ds.Forecasts
	}
	return cs, first
}

func (r *Runner) zone(name string) *time.Location {
	if name == "" {
		return r.loc
	}
	if l, ok := r.zones[name]; ok {
		return l
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		l = r.loc
	}
	if len(r.zones) < maxZones {
		r.zones[name] = l
	}
	return l
}

type seriesKey struct {
	channel, quantity string
}

type series struct {
	key  seriesKey
	pts  []point
	srcs []store.WindowResult // parallel to pts, without Values
}

// refit reads one device's source history, scores its unscored windows,
// and rewrites the forecasts that changed, in one commit.
func (r *Runner) refit(id string, loc *time.Location, now time.Time) (CycleStats, error) {
	var cs CycleStats
	res := r.cfg.Resolution
	perSeries := func(d time.Duration) int { return int(d/res) + 2 }
	var list []*series
	byKey := map[seriesKey]*series{}
	err := r.st.Results(store.ResultQuery{Pipeline: r.cfg.Source, Device: id, From: now.Add(-r.cfg.History), To: now,
		Limit: r.cfg.MaxSeriesPerDevice * perSeries(r.cfg.History)}, func(w *store.WindowResult) error {
		v, ok := w.Values[r.cfg.Value]
		if !ok || w.Retracted {
			return nil
		}
		k := seriesKey{w.Channel, w.Quantity}
		s := byKey[k]
		if s == nil {
			if len(list) >= r.cfg.MaxSeriesPerDevice {
				return nil
			}
			s = &series{key: k}
			byKey[k] = s
			list = append(list, s)
		}
		s.pts = append(s.pts, point{start: w.Start.UnixNano(), value: v})
		meta := *w
		meta.Values = nil
		s.srcs = append(s.srcs, meta)
		return nil
	})
	if err != nil {
		return cs, fmt.Errorf("analytics: %s history: %w", id, err)
	}
	if len(list) == 0 {
		return cs, nil
	}
	scoreFrom := now.Add(-r.cfg.Lookback)
	anom, err := r.existing(r.cfg.Anomaly, id, scoreFrom, now, perSeries(r.cfg.Lookback))
	if err != nil {
		return cs, err
	}
	fcFrom := scoreFrom
	fcTo := now.Add(r.cfg.Horizon + res)
	fc, err := r.existing(r.cfg.Forecast, id, fcFrom, fcTo, perSeries(r.cfg.Lookback+r.cfg.Horizon))
	if err != nil {
		return cs, err
	}
	var out window.Output
	var kinds []Kind
	var seasonal, naive errorSums
	for _, s := range list {
		r.scoreSeries(s, loc, scoreFrom, anom[s.key], fc[s.key], &out, &kinds, &seasonal, &naive)
		r.forecastSeries(s, loc, now, fc[s.key], &out)
	}
	if len(out.Results) == 0 {
		return cs, nil
	}
	b := r.st.NewBatch(r.partition(id))
	if err := b.PutOutput(out); err != nil {
		b.Abandon()
		return cs, fmt.Errorf("analytics: %s: %w", id, err)
	}
	if err := b.Commit(); err != nil {
		return cs, fmt.Errorf("analytics: %s: %w", id, err)
	}
	for _, res := range out.Results {
		if res.Pipeline == r.cfg.Anomaly {
			cs.Scored++
		} else {
			cs.Forecasts++
		}
	}
	for _, k := range kinds {
		r.m.anomalies.WithLabelValues(k.String()).Inc()
	}
	cs.Flagged = len(kinds)
	r.m.addErrors(modelSeasonal, seasonal)
	r.m.addErrors(modelNaive, naive)
	return cs, nil
}

// existing reads a device's results of pipeline in [from, to), by series
// and window start.
func (r *Runner) existing(pipeline, id string, from, to time.Time, perSeries int) (map[seriesKey]map[int64]*store.WindowResult, error) {
	out := map[seriesKey]map[int64]*store.WindowResult{}
	err := r.st.Results(store.ResultQuery{Pipeline: pipeline, Device: id, From: from, To: to,
		Limit: r.cfg.MaxSeriesPerDevice * perSeries}, func(w *store.WindowResult) error {
		k := seriesKey{w.Channel, w.Quantity}
		if out[k] == nil {
			out[k] = map[int64]*store.WindowResult{}
		}
		c := *w
		out[k][w.Start.UnixNano()] = &c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("analytics: %s %s: %w", id, pipeline, err)
	}
	return out, nil
}

// scoreSeries writes an anomaly result for every window of s at or after
// from (and a day after the series' first window) that has none yet, or
// whose source was revised since. The model is fitted to the windows before
// the first of them.
func (r *Runner) scoreSeries(s *series, loc *time.Location, from time.Time, anom, fc map[int64]*store.WindowResult,
	out *window.Output, kinds *[]Kind, seasonal, naive *errorSums) {
	lo := max(from.UnixNano(), s.pts[0].start+int64(24*time.Hour))
	var todo []int
	for i, p := range s.pts {
		if p.start < lo {
			continue
		}
		if old := anom[p.start]; old == nil || old.Revision < s.srcs[i].Revision {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return
	}
	m, ok := fitSeasonal(s.pts[:todo[0]], r.cfg.Resolution, loc, r.cfg.Params)
	if !ok {
		return
	}
	day := int64(24 * time.Hour)
	for _, i := range todo {
		b, kind, ok := m.verdict(s.pts, i)
		if !ok {
			continue
		}
		p, src := s.pts[i], &s.srcs[i]
		flag := 0.0
		if kind != KindNone {
			flag = 1
		}
		old := anom[p.start]
		if kind != KindNone && (old == nil || old.Values["anomaly"] == 0) {
			*kinds = append(*kinds, kind)
		}
		// A forecast's error is counted when its actual is first scored,
		// the naive forecast's (the same window a day earlier) beside it.
		if f := fc[p.start]; old == nil && f != nil {
			if e, ok := f.Values["expected"]; ok {
				seasonal.add(p.value, e)
				if j, ok := slices.BinarySearchFunc(s.pts[:i], p.start-day, func(q point, t int64) int { return cmp.Compare(q.start, t) }); ok {
					naive.add(p.value, s.pts[j].value)
				}
			}
		}
		out.Results = append(out.Results, r.result(r.cfg.Anomaly, s.key, src, r.anomNames,
			[]float64{b.expected, b.lower, b.upper, p.value, (p.value - b.expected) / b.scale, flag, float64(kind)}))
	}
}

// forecastSeries writes the forecast of every window from the one holding
// now to Horizon ahead whose band differs from the stored one.
func (r *Runner) forecastSeries(s *series, loc *time.Location, now time.Time, fc map[int64]*store.WindowResult, out *window.Output) {
	m, ok := fitSeasonal(s.pts, r.cfg.Resolution, loc, r.cfg.Params)
	if !ok {
		return
	}
	res := int64(r.cfg.Resolution)
	first := now.UnixNano() / res * res
	for t := first; t < first+int64(r.cfg.Horizon); t += res {
		b, ok := m.predict(t)
		if !ok {
			continue
		}
		vals := []float64{b.expected, b.lower, b.upper}
		rev := uint32(1)
		if old := fc[t]; old != nil {
			if sameValues(old.Values, r.fcNames, vals) {
				continue
			}
			rev = old.Revision + 1
		}
		meta := store.WindowResult{Device: s.srcs[0].Device, Channel: s.key.channel, Quantity: s.key.quantity,
			Start: time.Unix(0, t), End: time.Unix(0, t+res), Revision: rev}
		out.Results = append(out.Results, r.result(r.cfg.Forecast, s.key, &meta, r.fcNames, vals))
	}
}

func sameValues(old map[string]float64, names []string, vals []float64) bool {
	for i, n := range names {
		if v, ok := old[n]; !ok || v != vals[i] {
			return false
		}
	}
	return true
}

// result builds an engine result of pipeline for the window of src.
func (r *Runner) result(pipeline string, k seriesKey, src *store.WindowResult, names []string, vals []float64) window.Result {
	for i, v := range vals {
		if math.IsInf(v, 0) {
			vals[i] = math.NaN() // left out of the stored values
		}
	}
	q := wire.Quantity_QUANTITY_UNSPECIFIED
	if k.quantity != "" {
		if pq, err := wire.ParseQuantity(k.quantity); err == nil {
			q = pq
		}
	}
	return window.Result{
		Pipeline: pipeline, Key: window.Key{Device: src.Device, Channel: k.channel, Quantity: q},
		Start: src.Start.UnixNano(), End: src.End.UnixNano(), Revision: src.Revision, Provisional: src.Provisional,
		Names: names, Values: vals, Count: src.Count, Coverage: src.Coverage, WorstQuality: qualityOf(src.WorstQuality),
	}
}

func qualityOf(name string) wire.TimeQuality {
	for q := range wire.TimeQuality_name {
		if wire.TimeQuality(q).Name() == name {
			return wire.TimeQuality(q)
		}
	}
	return wire.TimeQuality_TIME_QUALITY_UNSPECIFIED
}
