package api

import (
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/gridedge/gridedge/cloud/fleet"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/shared/wire"
)

// Dashboard bounds. Every request reads at most this much, whatever the
// fleet or the data behind it.
const (
	// DashPageSize is the number of devices listed per page.
	DashPageSize = 50
	// DashMaxScan is the number of devices one request scans for search,
	// paging and the fleet counts; beyond it the counts say "at least".
	DashMaxScan = 20_000
	// DashMaxSpan is the longest power chart range.
	DashMaxSpan = 24 * time.Hour
	// DashMaxDays is the longest daily energy chart.
	DashMaxDays = maxBars
	// DashMaxReadings bounds the raw readings read for one power series.
	DashMaxReadings = 100_000
	// DashCountCap bounds the stored dead letters, conflicts and late
	// readings counted per request.
	DashCountCap = 1000
	maxSearchLen = 64
)

// dashLimits are the dashboard's bounds in force (the constants above;
// tests lower them).
type dashLimits struct {
	scan, count, readings, anomalies int
}

var defaultDashLimits = dashLimits{scan: DashMaxScan, count: DashCountCap, readings: DashMaxReadings, anomalies: DashAnomalyScan}

// withDashLimits sets the dashboard's bounds (tests).
func withDashLimits(l dashLimits) Option { return func(s *server) { s.dash = l } }

// The pipelines whose results the energy chart shows: daily energy, and
// the quarter hours summed for the day still running.
const (
	dailyPipeline   = "energy_daily"
	quarterPipeline = "energy_15m"
	restSeries      = "rest"
	mainsChannel    = "mains"
)

// dashSpans are the power chart ranges offered.
var dashSpans = []time.Duration{15 * time.Minute, time.Hour, 6 * time.Hour, DashMaxSpan}

// dashQuery is what the dashboard's URL asks for.
type dashQuery struct {
	Search string
	Page   int
	Device string
	Span   time.Duration
	Days   int
}

func parseDashQuery(v url.Values) (dashQuery, *Error) {
	q := dashQuery{Search: strings.TrimSpace(v.Get("q")), Page: 1, Span: time.Hour, Days: 7}
	if len(q.Search) > maxSearchLen {
		return q, &Error{Parameter: "q", Error: fmt.Sprintf("q: at most %d characters", maxSearchLen)}
	}
	if p := v.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > DashMaxScan/DashPageSize {
			return q, &Error{Parameter: "page", Error: fmt.Sprintf("page %q: want 1..%d", p, DashMaxScan/DashPageSize)}
		}
		q.Page = n
	}
	if d := v.Get("device"); d != "" {
		if err := wire.ValidateDeviceID(d); err != nil {
			return q, &Error{Parameter: "device", Error: "device " + err.Error()}
		}
		q.Device = d
	}
	if s := v.Get("span"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || !slices.Contains(dashSpans, d) {
			return q, &Error{Parameter: "span", Error: fmt.Sprintf("span %q: want one of 15m, 1h, 6h, 24h", s)}
		}
		q.Span = d
	}
	if s := v.Get("days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > DashMaxDays {
			return q, &Error{Parameter: "days", Error: fmt.Sprintf("days %q: want 1..%d", s, DashMaxDays)}
		}
		q.Days = n
	}
	return q, nil
}

// values encodes q back into a URL query, with changes applied by set.
func (q dashQuery) values(set func(*dashQuery)) string {
	c := q
	if set != nil {
		set(&c)
	}
	v := url.Values{}
	if c.Search != "" {
		v.Set("q", c.Search)
	}
	if c.Page > 1 {
		v.Set("page", strconv.Itoa(c.Page))
	}
	if c.Device != "" {
		v.Set("device", c.Device)
	}
	if c.Span != time.Hour {
		v.Set("span", shortDuration(c.Span))
	}
	if c.Days != 7 {
		v.Set("days", strconv.Itoa(c.Days))
	}
	return v.Encode()
}

func shortDuration(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return fmt.Sprintf("%dm", d/time.Minute)
}

// deviceRow is one device of the list with its health.
type deviceRow struct {
	Device
	ClockQuality string
	Backlog      uint64
	Dropped      uint64
	HasStatus    bool
	Selected     bool
	Link         string
}

// count is a bounded count: N, and whether counting stopped at the cap.
type count struct {
	N      int
	Capped bool
}

func (c count) String() string {
	if c.Capped {
		return strconv.Itoa(c.N) + "+"
	}
	return strconv.Itoa(c.N)
}

// fleetView is the fleet-wide part of the dashboard.
type fleetView struct {
	Devices, Online, Matches int
	// Scanned is false when more than DashMaxScan devices exist: the counts
	// cover the first DashMaxScan ids.
	Complete    bool
	DeadLetters count
	Conflicts   count
	// LateSinceStart and DeadSinceStart come from this collector's
	// metrics (NaN when it has none).
	LateSinceStart, DeadSinceStart float64
	// Anomalies are the windows flagged by the analytics in the last 24 h
	// (AnomalyDevices the devices they belong to); HasAnomalies is false
	// when the anomaly pipeline is not served.
	HasAnomalies   bool
	Anomalies      count
	AnomalyDevices int
}

// chartView is one chart with its legend.
type chartView struct {
	Title  string
	SVG    template.HTML
	Legend []legendItem
	Empty  bool
	Note   string
}

type legendItem struct{ Name, Color string }

// energyRow is one day of the energy table under the chart.
type energyRow struct {
	Day      string
	Values   []string
	Total    string
	Coverage string
	Partial  bool
}

// detailView is the selected device.
type detailView struct {
	Row      deviceRow
	Power    chartView
	Energy   chartView
	Bands    bandsView
	Circuits []string
	Days     []energyRow
	Late     count
	Zone     string
	SpanLink []spanLink
}

type spanLink struct {
	Label, Link string
	Current     bool
}

// dashView is everything one dashboard answer shows. gatherDashboard fills
// it; the templates only print it. A new chart is one more field here and
// one more gather step.
type dashView struct {
	Now         time.Time
	Query       dashQuery
	Fleet       fleetView
	Rows        []deviceRow
	Page, Pages int
	PrevLink    string
	NextLink    string
	Detail      *detailView
	Refresh     int
	ScanMax     int
	FragmentURL string
}

// gatherDashboard reads everything the dashboard shows for q.
func (s *server) gatherDashboard(q dashQuery, now time.Time) (*dashView, error) {
	v := &dashView{Now: now, Query: q, Refresh: dashRefreshSeconds, ScanMax: s.dash.scan}
	v.FragmentURL = "/dashboard/fragment?" + q.values(nil)
	sel, err := s.gatherDevices(v, q)
	if err != nil {
		return nil, err
	}
	if v.Fleet.DeadLetters, err = s.countDeadLetters(); err != nil {
		return nil, err
	}
	if v.Fleet.Conflicts, err = s.countConflicts(); err != nil {
		return nil, err
	}
	totals := s.metricTotals("gridedge_collector_window_late_readings_total", "gridedge_collector_deadletters_total")
	v.Fleet.LateSinceStart, v.Fleet.DeadSinceStart = totals[0], totals[1]
	if v.Fleet.HasAnomalies = slices.Contains(s.pipelines, s.anomalyPipeline); v.Fleet.HasAnomalies {
		if v.Fleet.Anomalies, v.Fleet.AnomalyDevices, err = s.countAnomalies(now); err != nil {
			return nil, err
		}
	}
	if sel != nil {
		if v.Detail, err = s.gatherDetail(q, *sel, now); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// gatherDevices scans up to the scan bound (DashMaxScan) of devices in id order: it counts the
// fleet, keeps the page of those matching the search, and returns the
// selected device (q.Device, else the first of the page) with its info.
func (s *server) gatherDevices(v *dashView, q dashQuery) (*selected, error) {
	skip := (q.Page - 1) * DashPageSize
	needle := strings.ToLower(q.Search)
	var sel *selected
	scanned := 0
	v.Fleet.Complete = true
	err := s.st.Devices("", func(id string, info *store.DeviceInfo, st *store.Status) error {
		if scanned == s.dash.scan {
			v.Fleet.Complete = false
			return errStop
		}
		scanned++
		v.Fleet.Devices++
		if fleet.Online(fleet.FromStore(id, info, st), v.Now, s.offlineAfter) {
			v.Fleet.Online++
		}
		site := ""
		if info != nil {
			site = info.Site
		} else if st != nil {
			site = st.Site
		}
		isSel := q.Device == id
		if needle != "" && !strings.Contains(strings.ToLower(id), needle) && !strings.Contains(strings.ToLower(site), needle) {
			if isSel {
				sel = &selected{row: s.deviceRow(id, info, st, q, v.Now), info: info}
			}
			return nil
		}
		v.Fleet.Matches++
		if v.Fleet.Matches <= skip || len(v.Rows) == DashPageSize {
			if isSel {
				sel = &selected{row: s.deviceRow(id, info, st, q, v.Now), info: info}
			}
			return nil
		}
		row := s.deviceRow(id, info, st, q, v.Now)
		if isSel || (q.Device == "" && len(v.Rows) == 0) {
			sel = &selected{row: row, info: info}
		}
		v.Rows = append(v.Rows, row)
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	if q.Device != "" && sel == nil {
		// Beyond the scanned range: look it up directly.
		info, ok, err := s.st.Device(q.Device)
		if err != nil {
			return nil, err
		}
		st, hasStatus, err := s.st.DeviceStatus(q.Device)
		if err != nil {
			return nil, err
		}
		var ip *store.DeviceInfo
		var sp *store.Status
		if ok {
			ip = &info
		}
		if hasStatus {
			sp = &st
		}
		if ok || hasStatus {
			sel = &selected{row: s.deviceRow(q.Device, ip, sp, q, v.Now), info: ip}
		}
	}
	if sel != nil {
		sel.row.Selected = true
		for i := range v.Rows {
			v.Rows[i].Selected = v.Rows[i].ID == sel.row.ID
		}
	}
	v.Page = q.Page
	v.Pages = max(1, (v.Fleet.Matches+DashPageSize-1)/DashPageSize)
	if q.Page > 1 {
		v.PrevLink = "/?" + q.values(func(c *dashQuery) { c.Page-- })
	}
	if q.Page < v.Pages {
		v.NextLink = "/?" + q.values(func(c *dashQuery) { c.Page++ })
	}
	return sel, nil
}

type selected struct {
	row  deviceRow
	info *store.DeviceInfo
}

// deviceRow is a device as the dashboard lists it: online by the fleet
// gauges' rule (fleet.Online) at now.
func (s *server) deviceRow(id string, info *store.DeviceInfo, st *store.Status, q dashQuery, now time.Time) deviceRow {
	r := deviceRow{Device: s.device(id, info, st)}
	r.Online = fleet.Online(fleet.FromStore(id, info, st), now, s.offlineAfter)
	if st != nil {
		r.HasStatus, r.ClockQuality, r.Backlog, r.Dropped = true, st.ClockQuality, st.BufferedReadings, st.DroppedReadings
	}
	r.Link = "/?" + q.values(func(c *dashQuery) { c.Device = id })
	return r
}

// gatherDetail reads the selected device's charts.
func (s *server) gatherDetail(q dashQuery, sel selected, now time.Time) (*detailView, error) {
	d := &detailView{Row: sel.row, Zone: sel.row.TimeZone}
	loc, err := time.LoadLocation(d.Zone)
	if err != nil || d.Zone == "" {
		loc, d.Zone = time.UTC, "UTC"
	}
	for _, sp := range dashSpans {
		d.SpanLink = append(d.SpanLink, spanLink{Label: shortDuration(sp), Current: sp == q.Span,
			Link: "/?" + q.values(func(c *dashQuery) { c.Span = sp; c.Device = sel.row.ID })})
	}
	// The charts end at the device's newest reading when that is earlier
	// than now (an offline device still shows its last hour), never later.
	end := now
	if sel.info != nil && sel.info.MaxEventNs > 0 {
		if last := time.Unix(0, sel.info.MaxEventNs); last.Before(end) {
			end = last
		}
	}
	var names []string
	if sel.info != nil {
		for _, sr := range sel.info.Series {
			names = append(names, sr.Channel)
		}
	}
	colors := newPalette(names)
	if d.Power, err = s.powerChart(sel, end.Add(-q.Span), end, loc, colors); err != nil {
		return nil, err
	}
	if err := s.energyChart(d, sel.row.ID, end, q.Days, loc, colors); err != nil {
		return nil, err
	}
	if err := s.bandCharts(d, sel.row.ID, end, loc, colors); err != nil {
		return nil, err
	}
	n := 0
	err = s.st.LateReadings(store.LateQuery{Device: sel.row.ID, Limit: s.dash.count + 1}, func(*store.LateReading) error {
		n++
		return nil
	})
	if err != nil {
		return nil, err
	}
	d.Late = s.capped(n)
	return d, nil
}

// powerChart draws the device's active power series over [from, to) from
// the raw readings, each downsampled to maxChartPoints means.
func (s *server) powerChart(sel selected, from, to time.Time, loc *time.Location, colors palette) (chartView, error) {
	cv := chartView{Title: fmt.Sprintf("Active power, last %s (W; times in %s)", shortDuration(to.Sub(from).Round(time.Minute)), loc)}
	var channels []string
	if sel.info != nil {
		for _, sr := range sel.info.Series {
			if sr.Quantity == wire.Quantity_QUANTITY_ACTIVE_POWER {
				channels = append(channels, sr.Channel)
			}
		}
	}
	slices.Sort(channels)
	channels = slices.Compact(channels)
	if len(channels) > maxChartSeries {
		cv.Note = fmt.Sprintf("%d of %d channels shown", maxChartSeries, len(channels))
		channels = channels[:maxChartSeries]
	}
	var series []lineSeries
	found := false
	for _, ch := range channels {
		b := newBuckets(from, to, maxChartPoints)
		n := 0
		err := s.st.Readings(sel.row.ID, ch, wire.Quantity_QUANTITY_ACTIVE_POWER, from, to, func(r store.Reading) error {
			if n == s.dash.readings {
				return errStop
			}
			n++
			if r.Flags == 0 {
				b.add(r.Time.UnixNano(), r.Value)
			}
			return nil
		})
		if errors.Is(err, errStop) {
			cv.Note = fmt.Sprintf("%s: only the first %d readings of the range are drawn; choose a shorter range", ch, s.dash.readings)
		} else if err != nil {
			return cv, err
		}
		found = found || n > 0
		ls := lineSeries{Name: ch, Color: colors.of(ch), Points: b.points()}
		series = append(series, ls)
		cv.Legend = append(cv.Legend, legendItem{Name: ch, Color: ls.Color})
	}
	cv.Empty = !found
	cv.SVG = lineChart(cv.Title, "W", from, to, loc, series)
	return cv, nil
}

func (s *server) countDeadLetters() (count, error) {
	n := 0
	err := s.st.DeadLetters(s.dash.count+1, func(*store.DeadLetter) error { n++; return nil })
	return s.capped(n), err
}

func (s *server) countConflicts() (count, error) {
	n := 0
	err := s.st.Conflicts(store.ConflictQuery{Limit: s.dash.count + 1}, func(*store.Conflict) error { n++; return nil })
	return s.capped(n), err
}

// capped is n counted up to the count bound (counting stopped at bound+1).
func (s *server) capped(n int) count {
	return count{N: min(n, s.dash.count), Capped: n > s.dash.count}
}

// metricTotals sums each named counter family of the server's metrics,
// gathered once (NaN for a family it does not have).
func (s *server) metricTotals(names ...string) []float64 {
	out := make([]float64, len(names))
	for i := range out {
		out[i] = math.NaN()
	}
	mfs, err := s.gatherer.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		i := slices.Index(names, mf.GetName())
		if i < 0 {
			continue
		}
		out[i] = 0
		for _, m := range mf.GetMetric() {
			out[i] += metricValue(m)
		}
	}
	return out
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}
