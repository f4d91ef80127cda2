package seriesblock

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// seedBlocks are valid blocks of every generator's shape, short enough for
// the fuzzer to mutate usefully.
func seedBlocks(t testing.TB) [][]byte {
	var out [][]byte
	for i, g := range generators {
		r := rand.New(rand.NewPCG(uint64(i), 9))
		for _, n := range []int{1, 3, 12} {
			out = append(out, encodeAll(t, g.gen(r, n)).Bytes())
		}
	}
	return append(out, (&Encoder{}).Bytes())
}

// FuzzDecode: arbitrary input never panics; Decode and Resume agree on
// whether it is a block; a block that decodes resumes to an encoder whose
// bytes decode to the same points and that keeps appending correctly.
func FuzzDecode(f *testing.F) {
	for _, b := range seedBlocks(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := AppendPoints(nil, data)
		e, rerr := Resume(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("decode error %v wraps neither ErrCorrupt nor ErrVersion", err)
			}
			if rerr == nil {
				t.Fatalf("Decode fails (%v), Resume accepts", err)
			}
			return
		}
		if rerr != nil {
			t.Fatalf("Decode accepts, Resume fails: %v", rerr)
		}
		if len(ps) > 8*len(data) {
			t.Fatalf("%d points from %d bytes", len(ps), len(data))
		}
		samePoints(t, decodeAll(t, e.Bytes()), ps)
		if e.Len() == MaxPoints {
			return
		}
		extra := Point{TimeNs: 1, Value: 2.5, Seq: 3, Epoch: 4, Quality: 5, ErrNs: 6, ReceivedNs: 7}
		if len(ps) > 0 {
			extra.TimeNs = ps[len(ps)-1].TimeNs + 1e9
		}
		if err := e.Append(extra); err != nil {
			t.Fatal(err)
		}
		samePoints(t, decodeAll(t, e.Bytes()), append(ps, extra))
	})
}

// pointsFrom turns fuzz bytes into points: each 9-byte record picks, per
// field, a regular continuation or a raw value, so both the compact paths
// and the escapes are exercised.
func pointsFrom(data []byte) []Point {
	var ps []Point
	var prev Point
	for len(data) >= 9 {
		kind, raw := data[0], binary.LittleEndian.Uint64(data[1:9])
		data = data[9:]
		p := prev
		p.TimeNs += 1e9
		p.Seq += 4
		if kind&1 != 0 {
			p.TimeNs = int64(raw)
		} else if kind&2 != 0 {
			p.TimeNs += int64(int16(raw))
		}
		if kind&4 != 0 {
			p.Seq = raw
		}
		switch kind >> 3 & 3 {
		case 0:
			p.Value = float64(int32(raw)) / 100
		case 1:
			p.Value = math.Float64frombits(raw)
		case 2:
			p.Value = float64(int16(raw))
		}
		if kind&32 != 0 {
			p.Epoch, p.Quality, p.ErrNs = raw>>3, int32(raw), int64(raw>>40)
		}
		if kind&64 != 0 {
			p.ReceivedNs = int64(raw)
		}
		ps = append(ps, p)
		prev = p
	}
	return ps
}

// FuzzRoundTrip: any point sequence round-trips bit-exactly, and resuming
// at any point gives the one-shot bytes.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11"), uint16(1))
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x08\x00\x00\x00\x00\x00\x00\xf0\x7f\x4f\x01\x00\x00\x00\x00\x00\x00\x80"), uint16(2))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		ps := pointsFrom(data)
		want := encodeAll(t, ps)
		block := want.Bytes()
		samePoints(t, decodeAll(t, block), ps)
		k := int(split) % (len(ps) + 1)
		e, err := Resume(encodeAll(t, ps[:k]).Bytes())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps[k:] {
			if err := e.Append(p); err != nil {
				t.Fatal(err)
			}
		}
		if string(e.Bytes()) != string(block) {
			t.Fatalf("resumed at %d of %d: bytes differ", k, len(ps))
		}
	})
}
