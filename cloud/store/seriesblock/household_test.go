package seriesblock

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
)

// householdCSV finds the UCI household file: the repository's copy under
// testdata/household, else the shared data directory beside the repository
// (../shared/data relative to the module root). Empty when neither exists.
func householdCSV(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
	for _, p := range []string{
		filepath.Join(dir, "testdata", "household", "uci-household-2006-12.csv"),
		filepath.Join(dir, "..", "shared", "data", "uci-household-2006-12.csv"),
	} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// householdColumn is one column of the household file as a meter would
// report it.
type householdColumn struct {
	name  string
	col   int     // index in the `;`-separated row
	scale float64 // file unit → reported unit
}

var householdColumns = []householdColumn{
	{"active-power-W", 2, 1000},     // kW → W
	{"reactive-power-var", 3, 1000}, // kvar → var
	{"voltage-V", 4, 1},
	{"current-A", 5, 1},
	{"sub1-W", 6, 60}, // Wh in the minute → mean W
	{"sub2-W", 7, 60},
	{"sub3-W", 8, 60},
}

// readHouseholdValues reads the listed columns of the UCI household file
// (`;`-separated, one row per minute, a header line; `?` marks a missing
// value, which is skipped). It needs columns the simulator's replay reader
// does not expose (voltage, current, reactive power).
func readHouseholdValues(t testing.TB, path string) [][]float64 {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := make([][]float64, len(householdColumns))
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if line == 1 {
			continue
		}
		fields := strings.Split(strings.TrimRight(sc.Text(), "\r"), ";")
		if len(fields) != 9 {
			t.Fatalf("%s:%d: %d fields, want 9", path, line, len(fields))
		}
		for i, c := range householdColumns {
			if fields[c.col] == "?" {
				continue
			}
			v, err := strconv.ParseFloat(fields[c.col], 64)
			if err != nil {
				t.Fatalf("%s:%d: column %d: %v", path, line, c.col, err)
			}
			out[i] = append(out[i], v*c.scale)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// start is the household file's first minute, 2006-12-16 17:24 Paris time.
var householdStart = time.Date(2006, 12, 16, 16, 24, 0, 0, time.UTC).UnixNano()

// asReadings gives values the shape of one series of a device with four
// series: seq steps of 4, one receive time per 100 readings (the batch's
// last reading time + 300 ms), synced time, no time error, one epoch.
func asReadings(values []float64, step int64, jitter func() int64) []Point {
	ps := make([]Point, len(values))
	for i, v := range values {
		t := householdStart + int64(i)*step
		if jitter != nil {
			t += jitter()
		}
		batchEnd := min(i/100*100+99, len(values)-1)
		ps[i] = Point{
			TimeNs: t, Value: v, Quality: 1, Epoch: 0x9e3779b97f4a7c15, Seq: 1000 + 4*uint64(i),
			ReceivedNs: householdStart + int64(batchEnd)*step + 300e6,
		}
	}
	return ps
}

// syntheticPower is a 1 Hz household power signal: a base load, a fridge
// cycling every 40 min, a kettle now and then, and Gaussian noise; full
// float64 precision, as a sensor driver computing W from register values
// produces.
func syntheticPower(n int) []float64 {
	r := rand.New(rand.NewPCG(42, 42))
	out := make([]float64, n)
	kettle := 0
	for i := range out {
		v := 180.0
		if i%2400 < 900 {
			v += 95
		}
		if kettle > 0 {
			v += 2000
			kettle--
		} else if r.IntN(3600) == 0 {
			kettle = 150
		}
		out[i] = v + r.NormFloat64()*4
	}
	return out
}

type blockSizes struct {
	readings           int
	raw, snappy, zstd  int
	snappyAll, zstdAll int // bytes when the blocks are compressed
}

func (s blockSizes) perReading(n int) float64 { return float64(n) / float64(s.readings) }

// measureBlocks cuts ps into blocks of blockLen points and sums their
// sizes, raw and compressed one block at a time.
func measureBlocks(t testing.TB, ps []Point, blockLen int, zenc *zstd.Encoder) blockSizes {
	s := blockSizes{readings: len(ps)}
	var e Encoder
	for i := 0; i < len(ps); i += blockLen {
		e.Reset()
		for _, p := range ps[i:min(i+blockLen, len(ps))] {
			if err := e.Append(p); err != nil {
				t.Fatal(err)
			}
		}
		b := e.Bytes()
		s.raw += len(b)
		s.snappy += len(snappy.Encode(nil, b))
		s.zstd += len(zenc.EncodeAll(b, nil))
	}
	return s
}

type measuredSeries struct {
	name string
	ps   []Point
}

func measuredSet(t testing.TB) []measuredSeries {
	var set []measuredSeries
	if path := householdCSV(t); path != "" {
		cols := readHouseholdValues(t, path)
		for _, cadence := range []struct {
			name string
			step int64
		}{{"1min", 60e9}, {"1s", 1e9}} {
			for i, c := range householdColumns {
				set = append(set, measuredSeries{"household/" + c.name + "/" + cadence.name, asReadings(cols[i], cadence.step, nil)})
			}
		}
	}
	syn := syntheticPower(86400)
	r := rand.New(rand.NewPCG(1, 1))
	rounded := make([]float64, len(syn))
	for i, v := range syn {
		rounded[i] = math.Round(v*10) / 10
	}
	set = append(set,
		measuredSeries{"synthetic-power/1s", asReadings(syn, 1e9, nil)},
		measuredSeries{"synthetic-power-0.1W/1s", asReadings(rounded, 1e9, nil)},
		measuredSeries{"synthetic-power-0.1W/1s-jitter±1ms", asReadings(rounded, 1e9, func() int64 { return r.Int64N(2e6) - 1e6 })},
	)
	return set
}

var blockLens = []int{64, 128, 256, 1024}

// TestMeasuredSizes checks the size goal on the real household data and
// the synthetic series: with blocks of 128 points or more, every series
// with exact timestamps stays within 10 bytes per reading before any
// general-purpose compression (the figures are deterministic, so this
// cannot flake). Run with -v for the table docs/measurements.md reports.
func TestMeasuredSizes(t *testing.T) {
	if householdCSV(t) == "" {
		t.Skip("household data not found under testdata/household or ../shared/data of the module root")
	}
	zenc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zenc.Close()
	t.Logf("| series | readings | 64 | 128 | 256 | 1024 | 1024 + Snappy | 1024 + zstd |")
	t.Logf("|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, m := range measuredSet(t) {
		row := fmt.Sprintf("| %s | %d |", m.name, len(m.ps))
		var last blockSizes
		for _, bl := range blockLens {
			last = measureBlocks(t, m.ps, bl, zenc)
			row += fmt.Sprintf(" %.2f |", last.perReading(last.raw))
			if bl >= 128 && !strings.Contains(m.name, "jitter") && last.perReading(last.raw) > 10 {
				t.Errorf("%s in blocks of %d: %.2f B/reading, goal ≤ 10", m.name, bl, last.perReading(last.raw))
			}
		}
		t.Logf("%s %.2f | %.2f |", row, last.perReading(last.snappy), last.perReading(last.zstd))
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, m := range benchSet(b) {
		b.Run(m.name, func(b *testing.B) {
			var e Encoder
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				for i := 0; i < len(m.ps); i += 1024 {
					e.Reset()
					for _, p := range m.ps[i:min(i+1024, len(m.ps))] {
						_ = e.Append(p)
					}
					_ = e.Bytes()
				}
				n += len(m.ps)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "points/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, m := range benchSet(b) {
		b.Run(m.name, func(b *testing.B) {
			var blocks [][]byte
			for i := 0; i < len(m.ps); i += 1024 {
				blocks = append(blocks, encodeAll(b, m.ps[i:min(i+1024, len(m.ps))]).Bytes())
			}
			b.ReportAllocs()
			n := 0
			sum := 0.0
			for b.Loop() {
				for _, blk := range blocks {
					if err := Decode(blk, func(p Point) bool { sum += p.Value; return true }); err != nil {
						b.Fatal(err)
					}
				}
				n += len(m.ps)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "points/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// benchSet is the household active power at 1 s (decimal values) and the
// synthetic full-precision power (XOR values).
func benchSet(b *testing.B) []measuredSeries {
	var out []measuredSeries
	for _, m := range measuredSet(b) {
		if m.name == "household/active-power-W/1s" || m.name == "synthetic-power/1s" {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		b.Fatal("no benchmark series")
	}
	return out
}
