package seriesblock

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, g := range generators {
		t.Run(g.name, func(t *testing.T) {
			for seed := range uint64(20) {
				r := rand.New(rand.NewPCG(seed, 1))
				ps := g.gen(r, 1+r.IntN(600))
				e := encodeAll(t, ps)
				block := e.Bytes()
				samePoints(t, decodeAll(t, block), ps)
				info, err := ReadInfo(block)
				if err != nil {
					t.Fatal(err)
				}
				minT, maxT := ps[0].TimeNs, ps[0].TimeNs
				for _, p := range ps {
					minT, maxT = min(minT, p.TimeNs), max(maxT, p.TimeNs)
				}
				if info != (Info{Points: len(ps), MinTime: minT, MaxTime: maxT}) || e.MinTime() != minT || e.MaxTime() != maxT || e.Len() != len(ps) {
					t.Fatalf("info %+v, encoder [%d,%d] len %d; want %d points in [%d,%d]",
						info, e.MinTime(), e.MaxTime(), e.Len(), len(ps), minT, maxT)
				}
			}
		})
	}
}

// Every intermediate Bytes is a complete block holding the points so far.
func TestBytesAtAnyTime(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, g := range generators {
		ps := g.gen(r, 80)
		var e Encoder
		for i, p := range ps {
			if err := e.Append(p); err != nil {
				t.Fatal(err)
			}
			samePoints(t, decodeAll(t, e.Bytes()), ps[:i+1])
		}
	}
}

// Persisting after any point and resuming gives the bytes of one
// uninterrupted encoding, also when resumed after every single point.
func TestResumeEqualsOneShot(t *testing.T) {
	for _, g := range generators {
		t.Run(g.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			ps := g.gen(r, 300)
			want := encodeAll(t, ps).Bytes()
			for _, k := range []int{0, 1, 2, 3, 17, 150, 299, 300} {
				e, err := Resume(encodeAll(t, ps[:k]).Bytes())
				if err != nil {
					t.Fatalf("resume at %d: %v", k, err)
				}
				for _, p := range ps[k:] {
					if err := e.Append(p); err != nil {
						t.Fatal(err)
					}
				}
				if got := e.Bytes(); !bytes.Equal(got, want) {
					t.Fatalf("resumed at %d: %d bytes differ from one-shot %d bytes", k, len(got), len(want))
				}
			}
			var block []byte
			for i, p := range ps[:120] {
				e, err := Resume(block)
				if i == 0 {
					e, err = &Encoder{}, nil
				}
				if err != nil {
					t.Fatalf("resume at %d: %v", i, err)
				}
				if err := e.Append(p); err != nil {
					t.Fatal(err)
				}
				block = e.Bytes()
			}
			if want := encodeAll(t, ps[:120]).Bytes(); !bytes.Equal(block, want) {
				t.Fatal("resuming after every point differs from one-shot encoding")
			}
		})
	}
}

func TestEmptyBlock(t *testing.T) {
	var e Encoder
	block := e.Bytes()
	if got := decodeAll(t, block); len(got) != 0 {
		t.Fatalf("empty block decodes to %d points", len(got))
	}
	if info, err := ReadInfo(block); err != nil || info != (Info{}) {
		t.Fatalf("ReadInfo = %+v, %v", info, err)
	}
	r, err := Resume(block)
	if err != nil {
		t.Fatal(err)
	}
	p := Point{TimeNs: 5, Value: 1.5, Seq: 9}
	if err := r.Append(p); err != nil {
		t.Fatal(err)
	}
	samePoints(t, decodeAll(t, r.Bytes()), []Point{p})
}

func TestReset(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	a, b := generators[0].gen(r, 100), generators[5].gen(r, 50)
	e := encodeAll(t, a)
	e.Reset()
	if e.Len() != 0 || e.MinTime() != 0 || e.MaxTime() != 0 {
		t.Fatalf("after Reset: len %d range [%d,%d]", e.Len(), e.MinTime(), e.MaxTime())
	}
	for _, p := range b {
		if err := e.Append(p); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(e.Bytes(), encodeAll(t, b).Bytes()) {
		t.Fatal("a reset encoder encodes differently from a new one")
	}
}

func TestFull(t *testing.T) {
	var e Encoder
	for i := range MaxPoints {
		if err := e.Append(Point{TimeNs: int64(i) * 1e9, Value: float64(i % 100), Seq: uint64(i)}); err != nil {
			t.Fatalf("point %d: %v", i, err)
		}
	}
	before := e.Bytes()
	if err := e.Append(Point{}); !errors.Is(err, ErrFull) {
		t.Fatalf("append to a full block: %v, want ErrFull", err)
	}
	if !bytes.Equal(before, e.Bytes()) || e.Len() != MaxPoints {
		t.Fatal("a refused append changed the block")
	}
	if got := decodeAll(t, before); len(got) != MaxPoints || got[MaxPoints-1].Seq != MaxPoints-1 {
		t.Fatalf("full block decodes to %d points", len(got))
	}
}

func TestDecodeStopsEarly(t *testing.T) {
	ps := generators[0].gen(rand.New(rand.NewPCG(1, 1)), 50)
	n := 0
	if err := Decode(encodeAll(t, ps).Bytes(), func(Point) bool { n++; return n < 10 }); err != nil || n != 10 {
		t.Fatalf("stopped decode: %d points, %v", n, err)
	}
}

func TestCorrupt(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	ps := generators[len(generators)-1].gen(r, 200)
	block := encodeAll(t, ps).Bytes()

	// Every truncation is detected.
	for n := range len(block) {
		if _, err := AppendPoints(nil, block[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("block cut to %d of %d bytes: %v, want ErrCorrupt", n, len(block), err)
		}
		if _, err := Resume(block[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("resume of a block cut to %d bytes: %v, want ErrCorrupt", n, err)
		}
	}
	// A byte more is detected.
	if _, err := AppendPoints(nil, append(bytes.Clone(block), 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte: %v", err)
	}
	// Unknown version.
	bad := bytes.Clone(block)
	bad[0] = Version + 1
	if _, err := AppendPoints(nil, bad); !errors.Is(err, ErrVersion) {
		t.Fatalf("version %d: %v, want ErrVersion", bad[0], err)
	}
	// Every single bit flip either decodes or fails with ErrCorrupt or
	// ErrVersion; none panics.
	flipped, detected := 0, 0
	for i := range len(block) * 8 {
		bad := bytes.Clone(block)
		bad[i/8] ^= 1 << (i % 8)
		_, err := AppendPoints(nil, bad)
		flipped++
		switch {
		case err == nil:
		case errors.Is(err, ErrCorrupt), errors.Is(err, ErrVersion):
			detected++
		default:
			t.Fatalf("bit %d flipped: error %v wraps neither ErrCorrupt nor ErrVersion", i, err)
		}
	}
	if detected == 0 {
		t.Fatalf("none of %d bit flips detected", flipped)
	}
	// Header lies.
	for name, b := range map[string][]byte{
		"empty":             {},
		"too many points":   {Version, 0x81, 0x80, 0x04},
		"columns too short": {Version, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"points vs columns": {Version, 100, 0, 0, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1},
		"span overflows":    {Version, 1, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02},
	} {
		if _, err := AppendPoints(nil, b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

func TestQualityOutOfRange(t *testing.T) {
	// A quality column value beyond int32 is corrupt, not truncated.
	var e Encoder
	if err := e.Append(Point{Quality: math.MaxInt32}); err != nil {
		t.Fatal(err)
	}
	e.qualities.cur = 1 << 40
	if _, err := AppendPoints(nil, e.Bytes()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("quality 2^40: %v, want ErrCorrupt", err)
	}
}
