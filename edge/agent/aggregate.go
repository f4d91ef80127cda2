package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/gridedge/gridedge/edge/clock"
	"github.com/gridedge/gridedge/shared/atomicfile"
	"github.com/gridedge/gridedge/shared/wire"
)

// energyStateFile holds an aggregating channel's integrated energy counter
// in its state directory, so the counter survives restarts like a real
// meter's register.
const energyStateFile = "energy.json"

// aggregator turns fast samples of one channel into one summary per
// aggregation interval (aligned to wall-clock multiples of it): for each
// quantity the mean under the channel's name and the min and max under
// <channel>.min and <channel>.max; energy counters and states keep their
// last value; and, when the channel asks for energy the driver does not
// give, energy integrated from active power (trapezoids over monotonic
// time, never across a reboot), persisted across restarts.
type aggregator struct {
	channel   string
	every     time.Duration
	integrate bool
	statePath string

	window int64       // index of the open window (wall / every); -1 when none
	first  clock.Stamp // stamp of the window's first sample
	accs   map[wire.Quantity]*acc
	order  []wire.Quantity

	energyWh  float64
	lastP     float64
	lastMono  int64
	lastBoot  string
	havePower bool
	gotEnergy bool // the driver reported energy in this window
}

type acc struct {
	sum, min, max, last float64
	n                   int
}

type energyState struct {
	EnergyWh float64 `json:"energy_wh"`
}

func newAggregator(channel string, every time.Duration, integrate bool, stateDir string) (*aggregator, error) {
	g := &aggregator{channel: channel, every: every, integrate: integrate, window: -1,
		statePath: filepath.Join(stateDir, energyStateFile), accs: map[wire.Quantity]*acc{}}
	if !integrate {
		return g, nil
	}
	data, err := os.ReadFile(g.statePath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("energy counter: %w", err)
	default:
		var st energyState
		if err := json.Unmarshal(data, &st); err != nil || math.IsNaN(st.EnergyWh) || st.EnergyWh < 0 {
			return nil, fmt.Errorf("energy counter %s is corrupt (%v): move it away to restart the counter at 0", g.statePath, err)
		}
		g.energyWh = st.EnergyWh
	}
	return g, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// add takes one sample's readings and returns the summary of the previous
// window when this sample opens a new one.
func (g *aggregator) add(st clock.Stamp, rs []*wire.Reading) ([]*wire.Reading, error) {
	var out []*wire.Reading
	var err error
	if w := floorDiv(st.WallNs, int64(g.every)); w != g.window {
		out, err = g.flush()
		g.window, g.first = w, st
	}
	for _, r := range rs {
		if r.Quantity == wire.Quantity_QUANTITY_ENERGY {
			g.gotEnergy = true
		}
		a, ok := g.accs[r.Quantity]
		if !ok {
			a = &acc{min: math.Inf(1), max: math.Inf(-1)}
			g.accs[r.Quantity] = a
			g.order = append(g.order, r.Quantity)
		}
		a.sum += r.Value
		a.n++
		a.min, a.max, a.last = min(a.min, r.Value), max(a.max, r.Value), r.Value
		if g.integrate && r.Quantity == wire.Quantity_QUANTITY_ACTIVE_POWER {
			if g.havePower && st.BootID == g.lastBoot && st.MonoNs > g.lastMono {
				g.energyWh += (g.lastP + r.Value) / 2 * time.Duration(st.MonoNs-g.lastMono).Hours()
			}
			g.lastP, g.lastMono, g.lastBoot, g.havePower = r.Value, st.MonoNs, st.BootID, true
		}
	}
	return out, err
}

// flush returns the open window's summary and starts afresh. The energy
// counter is persisted before it is reported.
func (g *aggregator) flush() ([]*wire.Reading, error) {
	if g.window < 0 || len(g.order) == 0 {
		return nil, nil
	}
	st := g.first
	mk := func(channel string, q wire.Quantity, v float64) *wire.Reading {
		return &wire.Reading{Channel: channel, Quantity: q, Value: v, WallNs: st.WallNs, MonoNs: st.MonoNs,
			TimeQuality: st.Quality, TimeErrorNs: st.ErrorNs}
	}
	var out []*wire.Reading
	for _, q := range g.order {
		a := g.accs[q]
		switch q {
		case wire.Quantity_QUANTITY_ENERGY, wire.Quantity_QUANTITY_STATE:
			out = append(out, mk(g.channel, q, a.last))
		default:
			out = append(out, mk(g.channel, q, a.sum/float64(a.n)), mk(g.channel+".min", q, a.min), mk(g.channel+".max", q, a.max))
		}
	}
	var err error
	if g.integrate && !g.gotEnergy && slices.Contains(g.order, wire.Quantity_QUANTITY_ACTIVE_POWER) {
		data, _ := json.Marshal(energyState{EnergyWh: g.energyWh})
		if err = atomicfile.Write(g.statePath, data); err != nil {
			err = fmt.Errorf("persist energy counter: %w", err)
		}
		out = append(out, mk(g.channel, wire.Quantity_QUANTITY_ENERGY, g.energyWh))
	}
	g.accs, g.order, g.gotEnergy, g.window = map[wire.Quantity]*acc{}, nil, false, -1
	return out, err
}
