package analytics_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/analytics"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/edge/sim"
	"github.com/gridedge/gridedge/shared/wire"
)

const (
	res    = 15 * time.Minute
	device = "house-1"
)

// householdPath is the repository's copy of the UCI household file.
const householdPath = "../../testdata/household/uci-household-2006-12.csv"

// win is one 15-minute energy (Wh) of a channel.
type win struct {
	start time.Time
	wh    float64
}

// householdWindows turns the household file into complete 15-minute
// energies per channel (mains, sub1..sub3), UTC-aligned like energy_15m.
func householdWindows(t testing.TB) map[string][]win {
	t.Helper()
	hf, err := sim.ReadHouseholdFile(householdPath)
	if err != nil {
		t.Fatal(err)
	}
	type acc struct {
		n  int
		wh [4]float64
	}
	byStart := map[int64]*acc{}
	var order []int64
	for _, r := range hf.Rows {
		s := r.Time.Truncate(res).UnixNano()
		a := byStart[s]
		if a == nil {
			a = &acc{}
			byStart[s] = a
			order = append(order, s)
		}
		a.n++
		for i, w := range r.Power {
			a.wh[i] += w / 60 // one minute at w watts
		}
	}
	out := map[string][]win{}
	for _, s := range order {
		a := byStart[s]
		if a.n != int(res/time.Minute) {
			continue
		}
		for i, ch := range sim.ReplayChannels {
			out[ch] = append(out[ch], win{time.Unix(0, s).UTC(), a.wh[i]})
		}
	}
	return out
}

// clone copies the windows (an injection target).
func clone(w map[string][]win) map[string][]win {
	out := map[string][]win{}
	for ch, ws := range w {
		out[ch] = append([]win(nil), ws...)
	}
	return out
}

// replay feeds source windows into a real store as energy_15m results,
// as they would close, and runs the analytics on a fake clock.
type replay struct {
	t       testing.TB
	st      *store.Store
	r       *analytics.Runner
	now     time.Time
	src     map[string][]win
	written map[string]int
	cycles  []analytics.CycleStats
}

func newReplay(t testing.TB, src map[string][]win, start time.Time, opts ...analytics.Option) *replay {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.WithSync(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &replay{t: t, st: st, now: start, src: src, written: map[string]int{}}
	cfg := analytics.DefaultConfig()
	cfg.TimeZone = "Europe/Paris"
	h.r, err = analytics.New(cfg, st, append([]analytics.Option{analytics.WithClock(func() time.Time { return h.now })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// publish writes the source windows that closed by h.now, and the
// device's newest reading time.
func (h *replay) publish() {
	h.t.Helper()
	var out window.Output
	newest := int64(0)
	for ch, ws := range h.src {
		for h.written[ch] < len(ws) && !ws[h.written[ch]].start.Add(res).After(h.now) {
			w := ws[h.written[ch]]
			out.Results = append(out.Results, window.Result{
				Pipeline: "energy_15m", Key: window.Key{Device: device, Channel: ch, Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER},
				Start: w.start.UnixNano(), End: w.start.Add(res).UnixNano(), Revision: 1,
				Names: []string{"energy", "count"}, Values: []float64{w.wh, 15}, Count: 15, Coverage: 1,
				WorstQuality: wire.TimeQuality_TIME_QUALITY_SYNCED,
			})
			h.written[ch]++
			newest = max(newest, w.start.Add(res).UnixNano()-1)
		}
	}
	if len(out.Results) == 0 {
		return
	}
	b := h.st.NewBatch(0)
	if err := b.PutOutput(out); err != nil {
		h.t.Fatal(err)
	}
	if err := b.PutDevice(&store.DeviceInfo{ID: device, MaxEventNs: newest}); err != nil {
		h.t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		h.t.Fatal(err)
	}
}

// runUntil advances the clock in steps of the schedule (10 minutes),
// publishing and running a cycle at each step.
func (h *replay) runUntil(end time.Time) { h.runEvery(end, 10*time.Minute) }

// runEvery is runUntil with another step.
func (h *replay) runEvery(end time.Time, step time.Duration) {
	h.t.Helper()
	for !h.now.Add(step).After(end) {
		h.now = h.now.Add(step)
		h.publish()
		cs, err := h.r.Cycle(context.Background())
		if err != nil {
			h.t.Fatal(err)
		}
		h.cycles = append(h.cycles, cs)
	}
}

// results reads every latest result of pipeline for channel.
func (h *replay) results(pipeline, channel string) []store.WindowResult {
	h.t.Helper()
	var out []store.WindowResult
	err := h.st.Results(store.ResultQuery{Pipeline: pipeline, Device: device, Channel: channel, Limit: 100000},
		func(w *store.WindowResult) error { out = append(out, *w); return nil })
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func paris(t testing.TB) *time.Location {
	l, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
