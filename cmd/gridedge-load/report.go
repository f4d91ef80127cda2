package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/gridedge/gridedge/edge/sim"
)

// report is the outcome of a load run, as printed and as JSON.
type report struct {
	Commit   string        `json:"commit"`
	Started  time.Time     `json:"started"`
	Meters   int           `json:"meters"`
	Ramp     string        `json:"ramp,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	Interval time.Duration `json:"interval_ns"`
	Buffer   string        `json:"buffer"`
	Jitter   string        `json:"jitter,omitempty"`
	Faults   string        `json:"faults,omitempty"`
	Wall     time.Duration `json:"wall_ns"`
	SimExit  string        `json:"sim_exit"`

	// Generated and acked over the run; the rates are means over the
	// plateau: from when every meter runs until sampling ends.
	Generated          uint64  `json:"generated"`
	Unacked            int64   `json:"unacked"`
	PlateauSeconds     float64 `json:"plateau_seconds"`
	GeneratedPerSec    float64 `json:"generated_per_sec"`
	AckedPerSec        float64 `json:"acked_per_sec"`
	PeakAckedPerSec    float64 `json:"peak_acked_per_sec"`
	MaxConnected       int     `json:"max_connected"`
	MaxLag             int64   `json:"max_lag"`           // generated - acked, simulator side
	MaxCollectorLag    int64   `json:"max_collector_lag"` // generated - stored, collector side
	DrainAfterSampling float64 `json:"drain_seconds"`     // from the end of sampling to the last ack

	AckP50        time.Duration `json:"ack_p50_ns"`
	AckP99        time.Duration `json:"ack_p99_ns"`
	ResultN       int           `json:"result_latency_n"`
	ResultP50     time.Duration `json:"result_p50_ns"`
	ResultP99     time.Duration `json:"result_p99_ns"`
	Processes     []procFigures `json:"processes"`
	Stored        uint64        `json:"stored"`
	ZeroLoss      bool          `json:"zero_loss"`
	LossDetail    []string      `json:"loss_detail,omitempty"`
	StoredTimeout bool          `json:"stored_timeout,omitempty"`
}

type procFigures struct {
	Name       string  `json:"name"`
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPercent float64 `json:"cpu_percent"` // of one core, mean over the run
	PeakRSS    int64   `json:"peak_rss_bytes"`
	RSSPer     int64   `json:"peak_rss_per_meter_bytes,omitempty"`
}

func (p *proc) figures(u usage, wall time.Duration) procFigures {
	f := procFigures{Name: p.name, CPUSeconds: (u.CPU - p.cpu0).Seconds(), PeakRSS: u.PeakRSS}
	if wall > 0 {
		f.CPUPercent = 100 * f.CPUSeconds / wall.Seconds()
	}
	return f
}

// fillProgress derives the rates and lags from the simulator's progress.
func (r *report) fillProgress(m *monitor, s settings) {
	var plateau []sim.Progress
	var samplingEnd time.Duration
	for _, p := range m.history {
		r.MaxConnected = max(r.MaxConnected, p.Connected)
		r.MaxLag = max(r.MaxLag, p.Lag)
		r.PeakAckedPerSec = max(r.PeakAckedPerSec, p.AckedPerSec)
		if p.Started == s.meters && p.GeneratedPerSec > 0 {
			plateau = append(plateau, p)
			samplingEnd = p.Elapsed
		}
	}
	if len(plateau) > 1 {
		a, b := plateau[0], plateau[len(plateau)-1]
		dt := (b.Elapsed - a.Elapsed).Seconds()
		r.PlateauSeconds = dt
		if dt > 0 {
			r.GeneratedPerSec = float64(b.Generated-a.Generated) / dt
			r.AckedPerSec = float64(b.Acked-a.Acked) / dt
		}
	}
	if n := len(m.history); n > 0 && samplingEnd > 0 {
		r.DrainAfterSampling = (m.history[n-1].Elapsed - samplingEnd).Seconds()
	}
	r.MaxCollectorLag = m.maxLag
	r.ResultN, r.ResultP50, r.ResultP99 = m.results.quantiles()
	for i := range r.Processes {
		if r.Processes[i].Name == "gridedge-sim" {
			r.Processes[i].RSSPer = r.Processes[i].PeakRSS / int64(max(r.Meters, 1))
		}
	}
}

// verify waits (up to two minutes) until the collector has stored what
// every meter generated, then compares per device: the zero-loss verdict.
func (r *report) verify(ctx context.Context, api *apiClient, res sim.Result) {
	deadline := time.Now().Add(2 * time.Minute)
	var stored map[string]uint64
	for {
		var err error
		stored, err = api.stored()
		var n uint64
		for _, v := range stored {
			n += v
		}
		r.Stored = n
		if err == nil && n >= res.Generated {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.StoredTimeout = true
			break
		}
		time.Sleep(time.Second)
	}
	var bad []string
	for _, m := range res.Meters {
		if got := stored[m.Device]; got != m.Generated || m.Unacked != 0 {
			bad = append(bad, fmt.Sprintf("%s: generated %d, stored %d, unacked %d", m.Device, m.Generated, got, m.Unacked))
		}
	}
	sort.Strings(bad)
	r.ZeroLoss = len(bad) == 0 && len(res.Meters) == r.Meters && res.Generated > 0
	if len(bad) > 20 {
		bad = append(bad[:20], fmt.Sprintf("and %d more meters", len(bad)-20))
	}
	r.LossDetail = bad
	for i := range r.Processes {
		if r.Processes[i].Name == "gridedge-sim" {
			r.Processes[i].RSSPer = r.Processes[i].PeakRSS / int64(max(r.Meters, 1))
		}
	}
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\n== gridedge load report (collector commit %s)\n", r.Commit)
	fmt.Fprintf(w, "fleet: %d meters, ramp %q, %s at %s per channel, buffer %s, jitter %q, faults %q; wall %s\n",
		r.Meters, r.Ramp, r.Duration, r.Interval, r.Buffer, r.Jitter, r.Faults, r.Wall.Round(time.Second))
	fmt.Fprintf(w, "readings: %d generated, %d stored, %d unacked; simulator exit: %s\n", r.Generated, r.Stored, r.Unacked, r.SimExit)
	fmt.Fprintf(w, "plateau (%.0f s, all meters running): generated %.0f/s, acked %.0f/s (peak %.0f/s); max connected %d\n",
		r.PlateauSeconds, r.GeneratedPerSec, r.AckedPerSec, r.PeakAckedPerSec, r.MaxConnected)
	fmt.Fprintf(w, "lag: max %d unacked (simulator), max %d not stored (collector); drain after sampling %.0f s\n",
		r.MaxLag, r.MaxCollectorLag, r.DrainAfterSampling)
	fmt.Fprintf(w, "end-to-end ack latency: p50 %s, p99 %s\n", r.AckP50.Round(time.Millisecond), r.AckP99.Round(time.Millisecond))
	fmt.Fprintf(w, "generation-to-result latency (power_1m, %d windows of the probed meters): p50 %s, p99 %s\n",
		r.ResultN, r.ResultP50.Round(time.Millisecond), r.ResultP99.Round(time.Millisecond))
	for _, p := range r.Processes {
		per := ""
		if p.RSSPer > 0 {
			per = fmt.Sprintf(" (%.1f KB per meter)", float64(p.RSSPer)/1024)
		}
		fmt.Fprintf(w, "  %-20s cpu %7.1f s (%5.1f%% of a core)  peak rss %7.1f MB%s\n", p.Name, p.CPUSeconds, p.CPUPercent,
			float64(p.PeakRSS)/(1<<20), per)
	}
	verdict := "ZERO LOSS: every generated reading is stored"
	if !r.ZeroLoss {
		verdict = "LOSS or incomplete run"
	}
	fmt.Fprintln(w, verdict)
	for _, l := range r.LossDetail {
		fmt.Fprintf(w, "  %s\n", l)
	}
}
