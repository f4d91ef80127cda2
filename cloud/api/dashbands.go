package api

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/gridedge/gridedge/cloud/analytics"
	"github.com/gridedge/gridedge/cloud/store"
)

// Band chart bounds: each channel's chart covers bandSpan before the
// device's newest reading (its anomaly windows) and bandSpan after it (its
// forecast), at most bandWindows windows each side; at most maxChartSeries
// channels are charted.
const (
	bandSpan    = 24 * time.Hour
	bandWindows = maxChartPoints / 2
	// DashAnomalyScan bounds the anomaly results of the last 24 h read for
	// the fleet's count of flagged windows; beyond it the count says "at
	// least".
	DashAnomalyScan = 20_000
)

// bandsView is the selected device's anomaly band and forecast charts.
type bandsView struct {
	Title  string
	Charts []bandChartView
	Empty  bool
	Note   string
}

// bandChartView is one channel's band chart.
type bandChartView struct {
	chartView
	Channel string
	Flagged int
}

// bandPoint is one window of a band chart: its band and, for a scored
// window, the actual value, score and anomaly kind (0 none).
type bandPoint struct {
	Start, End             time.Time
	Expected, Lower, Upper float64
	Actual, Score          float64
	Kind                   int
}

// bandSeries is one channel's windows: the scored ones before now (Past)
// and the forecasts after them (Future), each in time order.
type bandSeries struct {
	Channel, Color string
	Past, Future   []bandPoint
}

// kindName is an anomaly kind's name as the analytics label it; a kind
// they do not know (-1) is "unknown".
func kindName(k int) string {
	if k < 0 {
		return "unknown"
	}
	return analytics.Kind(k).String()
}

// bandCharts fills d.Bands: per channel of the device (at most
// maxChartSeries, by name) its anomaly_15m windows of the bandSpan before
// end and its forecast_15m windows from there to bandSpan after end.
func (s *server) bandCharts(d *detailView, device string, end time.Time, loc *time.Location, colors palette) error {
	b := &d.Bands
	b.Title = fmt.Sprintf("Energy per window against its expected band, anomalies and forecast, %s back and ahead (Wh per window; times in %s)", shortDuration(bandSpan), loc)
	if !slices.Contains(s.pipelines, s.anomalyPipeline) && !slices.Contains(s.pipelines, s.forecastPipeline) {
		b.Empty, b.Note = true, "the analytics pipelines ("+s.anomalyPipeline+", "+s.forecastPipeline+") are not configured"
		return nil
	}
	from, to := end.Add(-bandSpan), end.Add(bandSpan)
	series := map[string]*bandSeries{}
	quantity := map[string]string{}
	var names []string
	more, cut := false, false
	// read collects one pipeline's windows of [lo, hi) for the device: one
	// quantity per channel (the lowest, the choice the derived series
	// make), at most maxChartSeries channels, at most per windows a side.
	read := func(pipeline string, lo, hi time.Time, per int, add func(*bandSeries, bandPoint)) error {
		if !slices.Contains(s.pipelines, pipeline) {
			return nil
		}
		limit, n := (maxChartSeries+1)*per, 0
		err := s.st.Results(store.ResultQuery{Pipeline: pipeline, Device: device, From: lo, To: hi, Limit: limit},
			func(r *store.WindowResult) error {
				if n++; n == limit {
					// Windows finer than bandSpan / bandWindows: the
					// read stopped before the last channels.
					cut = true
				}
				if q, seen := quantity[r.Channel]; seen && q != r.Quantity {
					return nil
				}
				bs := series[r.Channel]
				if bs == nil {
					if len(series) == maxChartSeries {
						more = true
						return errStop
					}
					bs = &bandSeries{Channel: r.Channel, Color: colors.of(r.Channel)}
					series[r.Channel], quantity[r.Channel] = bs, r.Quantity
					names = append(names, r.Channel)
				}
				if r.Retracted {
					return nil
				}
				add(bs, bandPoint{Start: r.Start, End: r.End, Expected: value(r, "expected"), Lower: value(r, "lower"),
					Upper: value(r, "upper"), Actual: value(r, "actual"), Score: value(r, "score"), Kind: kindOf(r)})
				return nil
			})
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
		return nil
	}
	truncated := false
	err := read(s.anomalyPipeline, from, end, bandWindows, func(bs *bandSeries, p bandPoint) {
		if len(bs.Past) == bandWindows {
			// Keep the newest windows.
			bs.Past, truncated = append(bs.Past[:0], bs.Past[1:]...), true
		}
		bs.Past = append(bs.Past, p)
	})
	if err != nil {
		return err
	}
	// Forecasts are stored for past windows too: a channel's forecast
	// starts where its scored windows end (or at the window holding end).
	err = read(s.forecastPipeline, from, to, 2*bandWindows, func(bs *bandSeries, p bandPoint) {
		split := end
		if n := len(bs.Past); n > 0 {
			split = bs.Past[n-1].End
		}
		if !p.End.After(split) || (len(bs.Past) > 0 && p.Start.Before(split)) {
			return
		}
		if len(bs.Future) == bandWindows {
			truncated = true
			return
		}
		p.Actual, p.Score, p.Kind = math.NaN(), math.NaN(), 0
		bs.Future = append(bs.Future, p)
	})
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, n := range names {
		bs := series[n]
		if len(bs.Past) == 0 && len(bs.Future) == 0 {
			continue
		}
		cv := bandChartView{Channel: n}
		for _, p := range bs.Past {
			if p.Kind != 0 {
				cv.Flagged++
			}
		}
		cv.Title = fmt.Sprintf("%s: expected band, actual and forecast", n)
		cv.SVG = bandChart(cv.Title, from, end, to, loc, *bs)
		b.Charts = append(b.Charts, cv)
	}
	b.Empty = len(b.Charts) == 0
	switch {
	case cut:
		b.Note = fmt.Sprintf("the device's analytics windows are finer than one page reads (%d per channel and side): channels or windows may be missing", bandWindows)
	case more:
		b.Note = fmt.Sprintf("the first %d channels by name are shown", maxChartSeries)
	case truncated:
		b.Note = fmt.Sprintf("at most %d windows are drawn on each side of now", bandWindows)
	}
	return nil
}

// value is a result's named value, NaN when it has none.
func value(r *store.WindowResult, name string) float64 {
	if v, ok := r.Values[name]; ok {
		return v
	}
	return math.NaN()
}

// kindOf is a flagged window's kind (one of analytics.Kinds, -1 for a
// value it does not know), 0 when the window is not flagged.
func kindOf(r *store.WindowResult) int {
	if r.Values["anomaly"] != 1 {
		return 0
	}
	k := r.Values["kind"]
	for _, known := range analytics.Kinds() {
		if k == float64(known) {
			return int(known)
		}
	}
	return -1
}

// anomalyCountTTL is how long the fleet's count of flagged windows is
// reused before it is counted again.
const anomalyCountTTL = time.Minute

// anomalyCount is the fleet's count of flagged windows as of At.
type anomalyCount struct {
	mu      sync.Mutex
	at      time.Time
	flagged count
	devices int
}

// countAnomalies counts the windows flagged in the anomaly results whose
// window starts in the 24 h before now, reading at most the anomaly scan
// bound (DashAnomalyScan) of results, and the devices they belong to. A
// count less than anomalyCountTTL old is reused, so pages refreshing
// every few seconds scan the results once a minute.
func (s *server) countAnomalies(now time.Time) (count, int, error) {
	c := &s.anomalies
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && now.Sub(c.at) < anomalyCountTTL && !now.Before(c.at) {
		return c.flagged, c.devices, nil
	}
	n, flagged := 0, 0
	devices := map[string]bool{}
	err := s.st.Results(store.ResultQuery{Pipeline: s.anomalyPipeline, From: now.Add(-24 * time.Hour), To: now, Limit: s.dash.anomalies + 1},
		func(r *store.WindowResult) error {
			n++
			if n > s.dash.anomalies {
				return errStop
			}
			if !r.Retracted && kindOf(r) != 0 {
				flagged++
				devices[r.Device] = true
			}
			return nil
		})
	if err != nil && !errors.Is(err, errStop) {
		return count{}, 0, err
	}
	c.at, c.flagged, c.devices = now, count{N: flagged, Capped: n > s.dash.anomalies}, len(devices)
	return c.flagged, c.devices, nil
}
