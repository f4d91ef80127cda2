package window_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
)

// storedStates keeps the latest state of each device from TakeDelta, as a
// worker's store does, and serves them to the engine's loader.
type storedStates struct {
	states map[string][]byte
	loads  int
	fail   error
}

func (s *storedStates) take(t *testing.T, eng *window.Engine) {
	t.Helper()
	d, err := eng.TakeDelta()
	if err != nil {
		t.Fatal(err)
	}
	for _, ds := range d.Devices {
		s.states[ds.Device] = ds.State
	}
}

func (s *storedStates) load(device string) ([]byte, error) {
	if s.fail != nil {
		return nil, s.fail
	}
	s.loads++
	st, ok := s.states[device]
	if !ok {
		return nil, errors.New("no state stored")
	}
	return st, nil
}

// Unloading quiet devices and loading them back changes nothing: the same
// readings give the same outputs, in the same order, as an engine that
// keeps everything in memory, whether devices are unloaded as soon as they
// are clean or after a quiet spell.
func TestUnloadChangesNoResult(t *testing.T) {
	steps := compatScenario()
	pipes := compatPipelines()
	for _, quiet := range []time.Duration{0, 10 * time.Second} {
		plain := mustEngine(t, pipes...)
		st := &storedStates{states: map[string][]byte{}}
		eng, err := window.New(pipes, window.WithStateLoader(st.load))
		if err != nil {
			t.Fatal(err)
		}
		want, got := sha256.New(), sha256.New()
		unloaded := 0
		for i := range steps {
			for _, e := range []*window.Engine{plain, eng} {
				e.Advance(steps[i].proc)
				e.Apply(&steps[i].r)
			}
			if i%97 != 0 && i != len(steps)-1 {
				continue
			}
			digest(want, plain.TakeOutput())
			digest(got, eng.TakeOutput())
			if !bytes.Equal(want.Sum(nil), got.Sum(nil)) {
				t.Fatalf("quiet %v, step %d: outputs differ from the engine that unloads nothing", quiet, i)
			}
			st.take(t, eng)
			unloaded += eng.Unload(steps[i].proc - int64(quiet))
			if p, u := plain.Stats(), eng.Stats(); p.OpenWindows != u.OpenWindows || p.Results != u.Results {
				t.Fatalf("quiet %v, step %d: stats %+v, want %+v", quiet, i, u, p)
			}
		}
		// Past every idle timeout and lateness: quiet devices come back to
		// emit what the plain engine emits.
		end := steps[len(steps)-1].proc + int64(4*24*time.Hour)
		plain.Advance(end)
		eng.Advance(end)
		digest(want, plain.TakeOutput())
		digest(got, eng.TakeOutput())
		if !bytes.Equal(want.Sum(nil), got.Sum(nil)) {
			t.Fatalf("quiet %v: outputs after the idle timeouts differ", quiet)
		}
		if unloaded == 0 || st.loads == 0 {
			t.Fatalf("quiet %v: %d unloads, %d loads: the test exercised nothing", quiet, unloaded, st.loads)
		}
		// A whole checkpoint loads what is unloaded and equals the plain
		// engine's.
		eng.Unload(end + 1)
		a, err := plain.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		b, err := eng.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("quiet %v: checkpoint after unloading differs", quiet)
		}
		t.Logf("quiet %v: %d unloads, %d loads", quiet, unloaded, st.loads)
	}
}

// A failed load stops the engine: the next TakeDelta returns the error, so
// nothing computed without the device's state is ever stored.
func TestUnloadLoaderFailureStopsTheEngine(t *testing.T) {
	st := &storedStates{states: map[string][]byte{}}
	eng, err := window.New([]window.Pipeline{minuteStats()}, window.WithStateLoader(st.load))
	if err != nil {
		t.Fatal(err)
	}
	eng.Advance(sec(0))
	eng.Apply(reading("a", "p", sec(0), 1, 1))
	eng.TakeOutput()
	st.take(t, eng)
	if n := eng.Unload(sec(1)); n != 1 {
		t.Fatalf("unloaded %d devices, want 1", n)
	}
	if s := eng.Stats(); s.Unloaded != 1 {
		t.Fatalf("Stats.Unloaded %d, want 1", s.Unloaded)
	}
	st.fail = errors.New("disk gone")
	eng.Advance(sec(2))
	eng.Apply(reading("a", "p", sec(2), 1, 2))
	eng.TakeOutput()
	if _, err := eng.TakeDelta(); err == nil || !errors.Is(err, st.fail) {
		t.Fatalf("TakeDelta after a failed load: %v, want the loader's error", err)
	}
	if _, err := eng.Checkpoint(); err == nil {
		t.Fatal("Checkpoint after a failed load succeeded")
	}
	// A state of another device is refused.
	st2 := &storedStates{states: map[string][]byte{}}
	eng2, _ := window.New([]window.Pipeline{minuteStats()}, window.WithStateLoader(st2.load))
	eng2.Apply(reading("a", "p", sec(0), 1, 1))
	eng2.Apply(reading("b", "p", sec(0), 1, 1))
	eng2.TakeOutput()
	st2.take(t, eng2)
	st2.states["a"] = st2.states["b"]
	eng2.Unload(sec(1))
	eng2.Apply(reading("a", "p", sec(2), 1, 2))
	eng2.TakeOutput()
	if _, err := eng2.TakeDelta(); !errors.Is(err, window.ErrCheckpoint) {
		t.Fatalf("state of device b loaded for a: %v, want ErrCheckpoint", err)
	}
}

// A status repeating a quiet device's zone leaves it unloaded; another
// zone loads it and is kept.
func TestUnloadedDeviceAndItsTimeZone(t *testing.T) {
	st := &storedStates{states: map[string][]byte{}}
	eng, err := window.New([]window.Pipeline{minuteStats()}, window.WithStateLoader(st.load))
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.SetTimeZone("a", "Europe/Paris"); err != nil {
		t.Fatal(err)
	}
	eng.Apply(reading("a", "p", sec(0), 1, 1))
	eng.TakeOutput()
	st.take(t, eng)
	eng.Unload(sec(1))
	if err := eng.SetTimeZone("a", "Europe/Paris"); err != nil || st.loads != 0 || eng.Stats().Unloaded != 1 {
		t.Fatalf("same zone: err %v, %d loads, %d unloaded; want it left unloaded", err, st.loads, eng.Stats().Unloaded)
	}
	if err := eng.SetTimeZone("a", "America/New_York"); err != nil || st.loads != 1 || eng.Stats().Unloaded != 0 {
		t.Fatalf("new zone: err %v, %d loads, %d unloaded; want it loaded", err, st.loads, eng.Stats().Unloaded)
	}
	d, err := eng.TakeDelta()
	if err != nil || len(d.Devices) != 1 {
		t.Fatalf("delta after the zone change: %v, %d devices", err, len(d.Devices))
	}
}

// A counter's base goes through the device state when its device is
// unloaded: the once-a-day meter, unloaded after every reading (its windows
// and bases out of memory, loaded back from the stored state by the next
// reading), gives the same daily energy as an engine that keeps it, day 8
// included, whose base is the last reading of day 4, a window purged
// before day 8's reading came.
func TestCounterBaseSurvivesUnload(t *testing.T) {
	st := &storedStates{states: map[string][]byte{}}
	eng, err := window.New(window.DefaultPipelines(), window.WithStateLoader(st.load))
	if err != nil {
		t.Fatal(err)
	}
	got := map[winID]window.Result{}
	for i, r := range counterReadings(onceADay) {
		eng.Apply(&r)
		for _, res := range eng.TakeOutput().Results {
			got[winID{res.Pipeline, res.Key, res.Start}] = res
		}
		st.take(t, eng)
		if n := eng.Unload(math.MaxInt64); n != 1 {
			t.Fatalf("after reading %d: %d devices unloaded, want 1", i, n)
		}
	}
	if st.loads != len(onceADay)-1 {
		t.Errorf("%d loads, want %d (one per reading after the first)", st.loads, len(onceADay)-1)
	}
	checkDaily(t, "unloaded between readings", dailyCounterResults(t, got))
}
