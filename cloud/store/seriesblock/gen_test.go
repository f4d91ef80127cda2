package seriesblock

import (
	"math"
	"math/rand/v2"
	"testing"
)

// series generators for the property tests: each returns n points shaped
// like one kind of input.
type generator struct {
	name string
	gen  func(r *rand.Rand, n int) []Point
}

const t2024 = int64(1_704_067_200_000_000_000) // 2024-01-01T00:00:00Z

func meterPoints(r *rand.Rand, n int, start, step int64, value func(i int) float64) []Point {
	ps := make([]Point, n)
	epoch := r.Uint64()
	seq := r.Uint64N(1 << 40)
	recv := start + 2*step
	for i := range ps {
		if i%25 == 0 {
			recv += 25*step + r.Int64N(1e8)
		}
		ps[i] = Point{
			TimeNs: start + int64(i)*step, Value: value(i), Quality: 1,
			Epoch: epoch, Seq: seq + 4*uint64(i), ReceivedNs: recv,
		}
	}
	return ps
}

var generators = []generator{
	{"regular-decimal", func(r *rand.Rand, n int) []Point {
		v := 230.0
		return meterPoints(r, n, t2024, 1e9, func(int) float64 {
			v += float64(r.IntN(21)-10) / 100
			return math.Round(v*100) / 100
		})
	}},
	{"regular-float-noise", func(r *rand.Rand, n int) []Point {
		return meterPoints(r, n, t2024, 1e9, func(int) float64 { return 400 + r.NormFloat64()*5 })
	}},
	{"jittered-ns", func(r *rand.Rand, n int) []Point {
		ps := meterPoints(r, n, t2024, 1e9, func(i int) float64 { return float64(i % 7) })
		for i := range ps {
			ps[i].TimeNs += r.Int64N(4e6) - 2e6
		}
		return ps
	}},
	{"out-of-order", func(r *rand.Rand, n int) []Point {
		ps := meterPoints(r, n, t2024, 1e9, func(i int) float64 { return float64(r.IntN(5000)) })
		r.Shuffle(len(ps), func(i, j int) { ps[i].TimeNs, ps[j].TimeNs = ps[j].TimeNs, ps[i].TimeNs })
		return ps
	}},
	{"pre-1970", func(r *rand.Rand, n int) []Point {
		return meterPoints(r, n, -int64(40*365*24*3600)*1e9, 60e9, func(i int) float64 { return -float64(i) / 8 })
	}},
	{"around-epoch-zero", func(r *rand.Rand, n int) []Point {
		return meterPoints(r, n, -int64(n/2)*1e9, 1e9, func(i int) float64 { return 0 })
	}},
	{"huge-deltas", func(r *rand.Rand, n int) []Point {
		ps := make([]Point, n)
		ext := []int64{math.MinInt64, math.MaxInt64, 0, -1, 1}
		for i := range ps {
			t := int64(r.Uint64())
			if r.IntN(4) == 0 {
				t = ext[r.IntN(len(ext))]
			}
			ps[i] = Point{
				TimeNs: t, Value: math.Float64frombits(r.Uint64()), ErrNs: int64(r.Uint64()),
				Quality: int32(r.Uint32()), Epoch: r.Uint64(), Seq: r.Uint64(), ReceivedNs: int64(r.Uint64()),
			}
		}
		return ps
	}},
	{"seq-wraparound", func(r *rand.Rand, n int) []Point {
		ps := meterPoints(r, n, t2024, 1e9, func(i int) float64 { return 1 })
		start := math.MaxUint64 - 4*uint64(n/2)
		for i := range ps {
			ps[i].Seq = start + 4*uint64(i) // wraps through 0 half way
			if i%17 == 16 {
				ps[i].Seq = math.MaxUint64 - uint64(i&1)
			}
		}
		return ps
	}},
	{"special-floats", func(r *rand.Rand, n int) []Point {
		specials := []float64{
			math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 0, 5e-324, -5e-324,
			2.2250738585072009e-308, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64,
			1, 1, 0.1, 1e300, -1e-300, math.Float64frombits(0x000f_ffff_ffff_ffff), // largest subnormal
			math.Float64frombits(0x7ff8_0000_0000_0001), // a NaN payload: not a valid reading, still exact
			9007199254740992, -9007199254740992, 9007199254740991.5, 0.123456789, 0.1234567891,
		}
		return meterPoints(r, n, t2024, 1e9, func(int) float64 { return specials[r.IntN(len(specials))] })
	}},
	{"changing-meta", func(r *rand.Rand, n int) []Point {
		ps := meterPoints(r, n, t2024, 1e8, func(i int) float64 { return float64(i) / 1e3 })
		for i := range ps {
			if r.IntN(10) == 0 {
				ps[i].Epoch = r.Uint64()
			}
			ps[i].Quality = int32(r.IntN(3)) - 1
			ps[i].ErrNs = int64(r.IntN(3)) * 1e6
			if r.IntN(5) == 0 {
				ps[i].Seq = r.Uint64()
			}
		}
		return ps
	}},
}

func encodeAll(t testing.TB, ps []Point) *Encoder {
	t.Helper()
	var e Encoder
	for _, p := range ps {
		if err := e.Append(p); err != nil {
			t.Fatal(err)
		}
	}
	return &e
}

func decodeAll(t testing.TB, block []byte) []Point {
	t.Helper()
	ps, err := AppendPoints(nil, block)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return ps
}

// samePoints compares points with float values by bits.
func samePoints(t testing.TB, got, want []Point) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d points, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if math.Float64bits(g.Value) != math.Float64bits(w.Value) {
			t.Fatalf("point %d: value bits %#x (%v), want %#x (%v)", i, math.Float64bits(g.Value), g.Value, math.Float64bits(w.Value), w.Value)
		}
		g.Value, w.Value = 0, 0
		if g != w {
			t.Fatalf("point %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
