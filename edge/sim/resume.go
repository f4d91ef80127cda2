package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gridedge/gridedge/edge/sim/household"
	"github.com/gridedge/gridedge/shared/atomicfile"
)

// simStateFile is a virtual meter's simulation state, beside its agent's
// state and buffer in <data-dir>/<device>/.
const simStateFile = "sim.json"

// simState is what a meter's earlier runs sampled. A later run on the same
// data directory continues after SampledThrough, never at or before it: a
// reading the collector already has is never generated again under a new
// sequence number with other values, and the mains counter continues from
// Counter instead of restarting.
type simState struct {
	Version int `json:"version"`
	// SampledThrough is the newest sample time that may have been taken
	// (zero: none yet). While a run samples it is reserved ahead (see
	// reserveSpan), so a crash leaves a gap, never an overlap.
	SampledThrough time.Time `json:"sampled_through"`
	// Counter is the mains energy counter at a sample (household profile).
	Counter household.Counter `json:"counter"`
}

func loadSimState(dir string) (simState, bool, error) {
	data, err := os.ReadFile(filepath.Join(dir, simStateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return simState{}, false, nil
	}
	if err != nil {
		return simState{}, false, err
	}
	var st simState
	if err := json.Unmarshal(data, &st); err != nil || st.Version != 1 {
		return simState{}, false, fmt.Errorf("%s: not a version 1 simulation state (%v): use a new data directory", filepath.Join(dir, simStateFile), err)
	}
	return st, true, nil
}

// save writes the state atomically and durably.
func (st simState) save(dir string) error {
	data, err := st.encode(dir)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, simStateFile), data)
}

// saveInitial writes the state of a meter that has sampled nothing yet,
// without syncing: a fleet's first start writes one per meter, and losing
// it to a power cut loses nothing sampled.
func (st simState) saveInitial(dir string) error {
	data, err := st.encode(dir)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, simStateFile), data, 0o600)
}

func (st simState) encode(dir string) ([]byte, error) {
	st.Version = 1
	data, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	return data, os.MkdirAll(dir, 0o755)
}

// resumeState reads a meter's state from its directory. A directory that
// holds an agent's sequence state but no simulation state comes from a
// simulator that did not record what it sampled: continuing it could
// repeat sampled times under new sequence numbers, so it is refused.
func resumeState(dir string) (simState, error) {
	st, ok, err := loadSimState(dir)
	if err != nil || ok {
		return st, err
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "seq.json")); err == nil {
		return st, fmt.Errorf("%s holds a meter's sequence state but no %s (written by an older simulator): its sampled range is unknown; use a new data directory", dir, simStateFile)
	}
	return st, nil
}

// meterState keeps one meter's simulation state up to date while it runs:
// the sample times it took, reserved ahead on disk, and its counter.
type meterState struct {
	dir   string
	span  func() time.Duration
	found bool // the state was on disk at start

	mu       sync.Mutex
	st       simState
	reserved time.Time // what the file on disk says
	newest   time.Time // the newest sample actually taken
	err      error
}

// sampling records that a sample at t is about to be taken; when t is past
// the reservation on disk it first moves the reservation ahead by span.
func (m *meterState) sampling(t time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t.After(m.newest) {
		m.newest = t
	}
	if !t.After(m.reserved) {
		return nil
	}
	st := m.st
	st.SampledThrough = t.Add(m.span())
	if err := st.save(m.dir); err != nil {
		m.err = fmt.Errorf("save simulation state: %w", err)
		return m.err
	}
	m.reserved = st.SampledThrough
	return nil
}

// counter records the mains counter at the newest sample.
func (m *meterState) counter(c household.Counter) {
	m.mu.Lock()
	m.st.Counter = c
	m.mu.Unlock()
}

// close writes the exact state after sampling stopped: through the newest
// sample taken (or the state loaded, when none was).
func (m *meterState) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st
	if m.newest.After(st.SampledThrough) {
		st.SampledThrough = m.newest
	}
	if err := st.save(m.dir); err != nil {
		return fmt.Errorf("save simulation state: %w", err)
	}
	return nil
}

// noEnd is the planned end of a run without one (Duration 0): it samples
// until interrupted.
var noEnd = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// reserveSpan is how far ahead of a sample a meter's state reserves sample
// times on disk: a minute or six intervals once the clock is live, and
// while it catches up what two real seconds simulate (at least ten
// minutes or a hundred intervals), so a fast run writes its states rarely.
func (r *run) reserveSpan() time.Duration {
	if r.clk.Live() {
		return max(time.Minute, 6*r.interval)
	}
	return max(10*time.Minute, 100*r.interval, time.Duration(2*float64(time.Second)*r.cfg.Speed))
}

// resume reads every meter's simulation state. When any meter already
// sampled at or after the run's start, a run whose start was defaulted
// (movable) starts at the next sample time after the newest such sample;
// one with a given start (or a replay) is refused with the time to start
// after.
func (r *run) resume(movable bool) ([]*meterState, error) {
	states := make([]*meterState, r.cfg.Meters)
	var after time.Time
	for i := range states {
		dir := filepath.Join(r.cfg.DataDir, fmt.Sprintf("%s%04d", r.cfg.DevicePrefix, i+1))
		st, err := resumeState(dir)
		if err != nil {
			return nil, err
		}
		_, statErr := os.Stat(filepath.Join(dir, simStateFile))
		states[i] = &meterState{dir: dir, st: st, found: statErr == nil, span: r.reserveSpan}
		if st.SampledThrough.After(after) {
			after = st.SampledThrough
		}
	}
	if after.IsZero() || after.Before(r.start) {
		return states, nil
	}
	if !movable {
		return nil, fmt.Errorf("data directory %s has meters that sampled through %s: a run on it starts after that (give a later start, or none), or use a new data directory",
			r.cfg.DataDir, after.UTC().Format(time.RFC3339))
	}
	r.start = after.Truncate(r.interval).Add(r.interval).UTC()
	return states, nil
}
