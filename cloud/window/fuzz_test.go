package window_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
)

// Configuration is operator input: any bytes give pipelines or an error,
// never a panic, and accepted pipelines build an engine.
func FuzzParseConfig(f *testing.F) {
	f.Add(window.DefaultYAML())
	f.Add([]byte("pipelines:\n  - name: a\n    inputs: [{channel: x}]\n    window: {kind: sliding, size: 15s, slide: 1s}\n    aggregations: [readings]\n"))
	f.Add([]byte("pipelines: [{name: s, inputs: [{}], window: {kind: session, gap: 5s}, aggregations: [count], join: [a, b], active: b}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := window.ParseConfig(data)
		if err != nil {
			return
		}
		if _, err := window.New(ps); err != nil {
			t.Fatalf("ParseConfig accepted pipelines New rejects: %v", err)
		}
	})
}

func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{"mains.energy - sub1.energy", "-a.b+1e3", "a.b - - c.d", "1.2.3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		x, err := window.ParseExpr(src)
		if err != nil {
			return
		}
		if len(x.Terms) == 0 {
			t.Fatalf("%q parsed to no terms", src)
		}
		x.Eval(func(string, string) (float64, bool) { return 1, true })
	})
}

// A stored device state is read back from disk: any bytes restore or give
// ErrCheckpoint, never a panic, and a restored engine takes readings and
// writes its state again. Seeds: version 3 states written by the previous
// release and version 4 states of this one.
func FuzzRestoreDeviceState(f *testing.F) {
	pipes := compatPipelines()
	header, states := readCompatDelta(f)
	for _, st := range states[:2] {
		f.Add(st)
	}
	eng, err := window.New(pipes)
	if err != nil {
		f.Fatal(err)
	}
	steps := compatScenario()
	for _, s := range steps[:3000] {
		eng.Advance(s.proc)
		eng.Apply(&s.r)
	}
	eng.TakeOutput()
	d, err := eng.TakeDelta()
	if err != nil {
		f.Fatal(err)
	}
	for _, ds := range d.Devices {
		f.Add(ds.State)
	}
	f.Fuzz(func(t *testing.T, state []byte) {
		eng, err := window.RestoreDelta(pipes, header, [][]byte{state})
		if err != nil {
			if !errors.Is(err, window.ErrCheckpoint) {
				t.Fatalf("error not wrapping ErrCheckpoint: %v", err)
			}
			return
		}
		for _, s := range steps[len(steps)-200:] {
			eng.Advance(s.proc)
			eng.Apply(&s.r)
		}
		eng.Advance(steps[len(steps)-1].proc + int64(100*time.Hour))
		eng.TakeOutput()
		if _, err := eng.Checkpoint(); err != nil {
			t.Fatal(err)
		}
	})
}
