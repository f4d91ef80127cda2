package api

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/shared/wire"
)

// energyChart fills the daily energy chart and table: the engine's
// energy_daily results of the last days, and for the day still running the
// sum of its energy_15m results so far. Circuits are every channel but
// mains plus the derived rest when the device has one (they add up to
// mains, drawn as a marker), else every channel.
func (s *server) energyChart(d *detailView, device string, end time.Time, days int, loc *time.Location, colors palette) error {
	d.Energy.Title = fmt.Sprintf("Energy per day and circuit, last %d days (Wh)", days)
	if !slices.Contains(s.pipelines, dailyPipeline) {
		d.Energy.Empty, d.Energy.Note = true, "the "+dailyPipeline+" pipeline is not configured"
		return nil
	}
	y, m, dd := end.In(loc).Date()
	today := time.Date(y, m, dd, 0, 0, 0, 0, loc)
	from := today.AddDate(0, 0, -(days - 1))
	type key struct {
		day     time.Time
		channel string
	}
	type cell struct {
		q        wire.Quantity
		v        float64
		coverage float64
		partial  bool
	}
	cells := map[key]cell{}
	put := func(r *store.WindowResult, day time.Time, add, partial bool) {
		v, ok := r.Values["energy"]
		q := wire.Quantity(0)
		if r.Channel == restSeries && r.Quantity == "" {
			v, ok = r.Values["value"]
		} else if qq, err := wire.ParseQuantity(r.Quantity); err == nil {
			q = qq
		}
		if !ok || r.Retracted {
			return
		}
		k := key{day, r.Channel}
		c, seen := cells[k]
		// One series per channel: the lowest quantity (power before a
		// counter), the choice the derived series make.
		if seen && q > c.q {
			return
		}
		if seen && q == c.q && add {
			// Quarter hours: the day's coverage is the mean of theirs
			// over the day so far, kept as a sum until printed.
			c.v += v
			c.coverage += r.Coverage
		} else {
			c = cell{q: q, v: v, coverage: r.Coverage, partial: partial}
		}
		c.partial = c.partial || partial
		cells[k] = c
	}
	haveToday := false
	err := s.st.Results(store.ResultQuery{Pipeline: dailyPipeline, Device: device, From: from.Add(-time.Hour), To: end, Limit: MaxResults},
		func(r *store.WindowResult) error {
			day := localDay(r.Start, loc)
			if day.Before(from) {
				return nil
			}
			if !day.Before(today) {
				if r.Provisional {
					return nil // the quarter hours say more
				}
				haveToday = true
			}
			put(r, day, false, r.Provisional)
			return nil
		})
	if err != nil {
		return err
	}
	if !haveToday && slices.Contains(s.pipelines, quarterPipeline) {
		// The day still running: its closed quarter hours so far.
		for k := range cells {
			if k.day.Equal(today) {
				delete(cells, k)
			}
		}
		err = s.st.Results(store.ResultQuery{Pipeline: quarterPipeline, Device: device, From: today, To: end, Limit: MaxResults},
			func(r *store.WindowResult) error {
				put(r, today, true, true)
				return nil
			})
		if err != nil {
			return err
		}
	}
	channels := map[string]bool{}
	for k := range cells {
		channels[k.channel] = true
	}
	hasRest := channels[restSeries]
	var circuits []string
	for ch := range channels {
		if hasRest && ch == mainsChannel {
			continue
		}
		circuits = append(circuits, ch)
	}
	slices.SortFunc(circuits, func(a, b string) int {
		// rest last, the others by name
		return cmp.Or(cmp.Compare(boolInt(a == restSeries), boolInt(b == restSeries)), cmp.Compare(a, b))
	})
	if len(circuits) > maxChartSeries {
		d.Energy.Note = fmt.Sprintf("%d of %d circuits shown", maxChartSeries, len(circuits))
		circuits = circuits[:maxChartSeries]
	}
	d.Circuits = circuits
	var bars []barDay
	for i, day := 0, from; !day.After(today); i, day = i+1, day.AddDate(0, 0, 1) {
		bd := barDay{Slot: i, Label: day.Format("Mon 02"), Total: math.NaN()}
		row := energyRow{Day: day.Format("2006-01-02"), Total: "–"}
		filled := false
		coverage := math.Inf(1)
		for _, ch := range circuits {
			c, ok := cells[key{day, ch}]
			v := math.NaN()
			txt := "–"
			if ok {
				v, txt, filled = c.v, strconv.FormatFloat(c.v, 'f', 0, 64), true
				bd.Partial = bd.Partial || c.partial
				cov := c.coverage
				if c.partial && day.Equal(today) {
					cov = c.coverage / max(1, quarters(today, end))
				}
				coverage = min(coverage, cov)
			}
			bd.Parts = append(bd.Parts, v)
			row.Values = append(row.Values, txt)
		}
		if hasRest {
			if c, ok := cells[key{day, mainsChannel}]; ok {
				bd.Total, row.Total, filled = c.v, strconv.FormatFloat(c.v, 'f', 0, 64), true
				bd.Partial = bd.Partial || c.partial
			}
		}
		if !filled {
			continue
		}
		if bd.Partial {
			bd.Label += " *"
		}
		row.Partial = bd.Partial
		row.Coverage = "–"
		if !math.IsInf(coverage, 1) {
			row.Coverage = strconv.FormatFloat(100*min(coverage, 1), 'f', 0, 64) + " %"
		}
		bars = append(bars, bd)
		d.Days = append(d.Days, row)
	}
	var cs []string
	for _, c := range circuits {
		cs = append(cs, colors.of(c))
		d.Energy.Legend = append(d.Energy.Legend, legendItem{Name: c, Color: colors.of(c)})
	}
	d.Energy.Empty = len(bars) == 0
	d.Energy.SVG = stackedBars(d.Energy.Title, days, circuits, cs, bars)
	return nil
}

// quarters is the number of closed quarter hours from day to end.
func quarters(day, end time.Time) float64 {
	return math.Floor(end.Sub(day).Minutes() / 15)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// localDay is the local midnight of the day holding t (a calendar window's
// start is a local midnight in the device's zone).
func localDay(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}
