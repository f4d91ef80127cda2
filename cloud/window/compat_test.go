package window_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

// updateCompat rewrites testdata/state-v3/: run it only with the release
// whose state encoding the fixture is meant to hold.
var updateCompat = flag.Bool("update-compat", false, "rewrite testdata/state-v3 from this engine")

const compatDir = "testdata/state-v3"

// compatPipelines are the pipelines shipped with the release that wrote
// the fixture (testdata/state-v3/pipelines.yaml: the state records their
// fingerprint) plus a paned sliding energy pipeline, a session pipeline and
// an energy-counter week.
func compatPipelines() []window.Pipeline {
	y, err := os.ReadFile(filepath.Join(compatDir, "pipelines.yaml"))
	if err != nil {
		panic(err)
	}
	ps, err := window.ParseConfig(y)
	if err != nil {
		panic(err)
	}
	return append(ps,
		window.Pipeline{
			Name: "energy_slide", Inputs: []window.Selector{{Quantity: "active_power"}},
			Window:       window.WindowSpec{Kind: window.Sliding, Size: 10 * time.Minute, Slide: 5 * time.Minute},
			Aggregations: []window.Aggregation{{Name: "energy", Func: window.Energy}, {Name: "last", Func: window.Last}},
			MaxGap:       time.Minute, OutOfOrderness: 10 * time.Second, AllowedLateness: 30 * time.Minute, IdleTimeout: 3 * time.Minute,
		},
		window.Pipeline{
			Name: "sess", Inputs: []window.Selector{{Channel: "sub1", Quantity: "active_power"}},
			Window:         window.WindowSpec{Kind: window.Session, Gap: 20 * time.Second, MinDuration: 10 * time.Second},
			Aggregations:   []window.Aggregation{{Name: "count", Func: window.Count}, {Name: "energy", Func: window.Energy}},
			OutOfOrderness: time.Second, AllowedLateness: time.Minute, IdleTimeout: time.Minute,
		},
		window.Pipeline{
			Name: "week", Inputs: []window.Selector{{Quantity: "energy"}},
			Window:       window.WindowSpec{Kind: window.Week},
			Aggregations: []window.Aggregation{{Name: "energy", Func: window.Energy}, {Name: "first", Func: window.First}},
			MaxGap:       time.Hour, AllowedLateness: time.Hour, TimeZone: "Europe/Paris",
		},
	)
}

// compatReading is one step of the compat scenario: a reading applied at a
// processing time.
type compatReading struct {
	proc int64
	r    window.Reading
}

// compatScenario is deterministic: three devices, four power channels and
// an energy counter each over two hours across midnight, shuffled within
// out-of-orderness, with repeated timestamps (ties broken by sequence), a
// new sequence epoch, late readings within and beyond lateness, and quiet
// spells that make the engine emit provisional results.
func compatScenario() []compatReading {
	rng := rand.New(rand.NewPCG(8, 3))
	start := time.Date(2026, 3, 28, 22, 30, 0, 0, time.UTC).UnixNano() // across the DST change in Paris
	var out []compatReading
	seq := map[string]uint64{}
	var late []compatReading
	for s := 0; s < 2*3600; s += 3 {
		for d := range 3 {
			dev := fmt.Sprintf("dev-%d", d)
			if d == 1 && s > 2400 && s < 4200 {
				continue // offline for half an hour
			}
			epoch := uint64(0xfeed)
			if d == 2 && s > 5000 {
				epoch = 0xbeef // the agent's sequence state was reset
			}
			var batch []window.Reading
			for c, ch := range []string{"mains", "sub1", "sub2", "sub3"} {
				seq[dev]++
				t := start + int64(s)*int64(time.Second) + int64(rng.IntN(1000))*int64(time.Millisecond)
				if rng.IntN(50) == 0 && len(batch) > 0 {
					t = batch[len(batch)-1].TimeNs // same instant, tie broken by seq
				}
				v := math.Round(1000*(500+400*math.Sin(float64(s)/600+float64(c))+rng.Float64()*50)) / 1000
				if ch == "sub1" && (s/120)%3 == 0 {
					v = 0
				}
				batch = append(batch, window.Reading{Device: dev, Channel: ch, Quantity: power, TimeNs: t, Value: v, Quality: synced, SeqEpoch: epoch, Seq: seq[dev]})
			}
			seq[dev]++
			batch = append(batch, window.Reading{Device: dev, Channel: "meter", Quantity: energy, TimeNs: start + int64(s)*int64(time.Second),
				Value: float64(s) * 0.37, Quality: wire.TimeQuality_TIME_QUALITY_RTC, SeqEpoch: epoch, Seq: seq[dev]})
			rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
			proc := start + int64(s+d)*int64(time.Second)
			for _, r := range batch {
				if rng.IntN(400) == 0 {
					late = append(late, compatReading{r: r}) // held back, delivered later
					continue
				}
				out = append(out, compatReading{proc: proc, r: r})
			}
			if len(late) > 0 && rng.IntN(200) == 0 {
				for _, l := range late {
					out = append(out, compatReading{proc: proc, r: l.r})
				}
				late = late[:0]
			}
		}
	}
	for _, l := range late {
		out = append(out, compatReading{proc: out[len(out)-1].proc, r: l.r})
	}
	return out
}

// digest hashes results and late readings exactly (floats by their bits).
func digest(h interface{ Write([]byte) (int, error) }, o window.Output) {
	for _, r := range o.Results {
		fmt.Fprintf(h, "%s|%v|%d|%d|%d|%v|%v|%d|%x|%d|%d|", r.Pipeline, r.Key, r.Start, r.End, r.Revision, r.Provisional, r.Retracted,
			r.Count, math.Float64bits(r.Coverage), r.WorstQuality, r.CounterResets)
		for i, v := range r.Values {
			fmt.Fprintf(h, "%s=%x,", r.Names[i], math.Float64bits(v))
		}
		for _, row := range r.Rows {
			fmt.Fprintf(h, "%d:", row.TimeNs)
			for _, v := range row.Values {
				fmt.Fprintf(h, "%x,", math.Float64bits(v))
			}
		}
		fmt.Fprintln(h)
	}
	for _, l := range o.Late {
		fmt.Fprintf(h, "late %s %+v %v\n", l.Pipeline, l.Reading, l.Windows)
	}
}

// runCompat applies steps[from:to] to eng, advancing processing time, and
// hashes every output into h.
func runCompat(eng *window.Engine, steps []compatReading, from, to int, h interface{ Write([]byte) (int, error) }) {
	for i := from; i < to; i++ {
		eng.Advance(steps[i].proc)
		eng.Apply(&steps[i].r)
		if i%97 == 0 {
			digest(h, eng.TakeOutput())
		}
	}
	digest(h, eng.TakeOutput())
}

// State written by the release before the compact bins (checkpoint version
// 3) restores, in both forms the collector stores, and continues with
// exactly the results an uninterrupted engine gives: the fixture holds a
// checkpoint and a delta taken half-way and the hashes of the results before
// and after that point. The hashes are those of the release that carries
// counters across windows (its week counter's energies include the
// increment from the previous window's last reading), which reads the same
// state and gives the same results restored or not.
func TestRestoresStateOfVersion3(t *testing.T) {
	steps := compatScenario()
	half := len(steps) / 2
	pipes := compatPipelines()
	if *updateCompat {
		writeCompat(t, pipes, steps, half)
	}
	want, err := os.ReadFile(filepath.Join(compatDir, "results.txt"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(want))
	if len(f) != 2 {
		t.Fatalf("results.txt: %q", want)
	}
	wantBefore, wantAfter := f[0], f[1]

	// This engine, uninterrupted, gives the release's results.
	eng := mustEngine(t, pipes...)
	h := sha256.New()
	runCompat(eng, steps, 0, half, h)
	if got := hex.EncodeToString(h.Sum(nil)); got != wantBefore {
		t.Fatalf("results before the checkpoint differ from the release's: %s, want %s", got, wantBefore)
	}
	h = sha256.New()
	runCompat(eng, steps, half, len(steps), h)
	if got := hex.EncodeToString(h.Sum(nil)); got != wantAfter {
		t.Fatalf("results after the checkpoint differ from the release's: %s, want %s", got, wantAfter)
	}

	header, states := readCompatDelta(t)
	// A whole checkpoint is the header followed by the devices' states.
	ck := binary.AppendUvarint(append([]byte(nil), header...), uint64(len(states)))
	for _, st := range states {
		ck = binary.AppendUvarint(ck, uint64(len(st)))
		ck = append(ck, st...)
	}
	restored := map[string]func() (*window.Engine, error){
		"checkpoint": func() (*window.Engine, error) { return window.Restore(pipes, ck) },
		"delta":      func() (*window.Engine, error) { return window.RestoreDelta(pipes, header, states) },
		// With a loader every device is unloaded at once and read back
		// from its version 3 state when needed.
		"delta, unloaded": func() (*window.Engine, error) {
			byName := map[string][]byte{}
			for _, st := range states {
				n, k := binary.Uvarint(st)
				byName[string(st[k:k+int(n)])] = st
			}
			eng, err := window.RestoreDelta(pipes, header, states, window.WithStateLoader(func(d string) ([]byte, error) { return byName[d], nil }))
			if err == nil && eng.Stats().Unloaded != len(states) {
				t.Errorf("restored with a loader: %d devices unloaded, want %d", eng.Stats().Unloaded, len(states))
			}
			return eng, err
		},
	}
	for name, restore := range restored {
		eng, err := restore()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		h := sha256.New()
		runCompat(eng, steps, half, len(steps), h)
		if got := hex.EncodeToString(h.Sum(nil)); got != wantAfter {
			t.Errorf("%s of version 3 restored: results %s, want %s", name, got, wantAfter)
		}
		// And its state written again in this version's encoding restores
		// to the same engine.
		if _, err := eng.Checkpoint(); err != nil {
			t.Fatal(err)
		}
	}
}

func writeCompat(t *testing.T, pipes []window.Pipeline, steps []compatReading, half int) {
	t.Helper()
	eng := mustEngine(t, pipes...)
	h := sha256.New()
	runCompat(eng, steps, 0, half, h)
	before := hex.EncodeToString(h.Sum(nil))
	d, err := eng.TakeDelta()
	if err != nil {
		t.Fatal(err)
	}
	var db []byte
	db = binary.AppendUvarint(db, uint64(len(d.Header)))
	db = append(db, d.Header...)
	for _, s := range d.Devices {
		db = binary.AppendUvarint(db, uint64(len(s.State)))
		db = append(db, s.State...)
	}
	h = sha256.New()
	runCompat(eng, steps, half, len(steps), h)
	after := hex.EncodeToString(h.Sum(nil))
	t.Logf("%+v", eng.Stats())
	if err := os.MkdirAll(compatDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(db); err != nil || zw.Close() != nil {
		t.Fatal("gzip", err)
	}
	for name, b := range map[string][]byte{"delta.bin.gz": gz.Bytes(), "results.txt": []byte(before + "\n" + after + "\n")} {
		if err := os.WriteFile(filepath.Join(compatDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readCompatDelta(t testing.TB) (header []byte, states [][]byte) {
	t.Helper()
	f, err := os.Open(filepath.Join(compatDir, "delta.bin.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	next := func() []byte {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			t.Fatal("delta.bin: corrupt")
		}
		v := b[k : k+int(n)]
		b = b[k+int(n):]
		return v
	}
	header = next()
	for len(b) > 0 {
		states = append(states, next())
	}
	return header, states
}
