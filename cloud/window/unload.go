// Unloading: a quiet device's windows leave memory and come back from its
// stored state when something needs them.

package window

import "fmt"

// WithStateLoader lets the engine drop quiet devices' windows (Unload) and
// read them back with load, which returns the device's latest state as a
// TakeDelta returned it (DeviceState.State) and the caller stored. Without
// a loader, Unload does nothing. RestoreDelta with a loader unloads every
// device it restores at once (they are stored): a restarted engine holds
// only what its devices' next readings load back.
func WithStateLoader(load func(device string) ([]byte, error)) Option {
	return func(e *Engine) { e.loader = load }
}

// Unload drops from memory the windows, sessions and derived-series
// revisions of every device that received no reading since processing time
// quietBefore and whose state has not changed since the last TakeDelta, and
// returns how many it dropped. Call it between Apply calls, after
// TakeOutput, and only once the last Delta's states are durably stored:
// they are what the loader returns.
//
// Unloading changes no result: a device's state comes back, exactly as
// stored, before anything reads or changes it (a reading of the device,
// its time zone, its idle timeout passing in Advance, Checkpoint). What
// stays in memory per device is its routes, pipelines and series
// (their descriptors, without windows) and its watermark.
//
// If the loader fails, the engine cannot go on: TakeDelta and Checkpoint
// return the error from then on, and the engine must be rebuilt from the
// stored state.
func (e *Engine) Unload(quietBefore int64) int {
	if e.loader == nil || e.outputTaken() != nil {
		return 0
	}
	n := 0
	for di := range e.devs {
		d := &e.devs[di]
		if d.unloaded || d.ckDirty || d.lastSeen >= quietBefore || len(d.routes) == 0 {
			continue
		}
		e.unload(int32(di))
		n++
	}
	return n
}

// unload drops device di's windows; its state must be the stored one.
func (e *Engine) unload(di int32) {
	d := &e.devs[di]
	for _, dpi := range d.dps {
		dp := &e.dps[dpi]
		dp.derived = nil
		for _, si := range dp.series {
			s := &e.series[si]
			s.wins, s.pn, s.cur, s.sess, s.base = nil, nil, nil, nil, nil
		}
	}
	d.unloaded = true
	e.stats.Unloaded++
}

// load reads unloaded device di's state back; false if it failed (the
// error sticks in loadErr).
func (e *Engine) load(di int32) bool {
	if e.loadErr != nil {
		return false
	}
	name := e.devs[di].name
	st, err := e.loader(name)
	if err == nil {
		_, err = e.restoreDevice(st, name)
	}
	if err != nil {
		e.loadErr = fmt.Errorf("window: load state of device %s: %w", name, err)
		e.log.Error("window: device state not loaded", "device", name, "err", err)
		return false
	}
	e.devs[di].unloaded = false
	e.stats.Unloaded--
	return true
}
