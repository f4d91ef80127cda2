package dedup

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestSetMatchesAMap(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var s Set
		seen := map[uint64]bool{}
		for range 5000 {
			seq := uint64(rng.IntN(3000)) + 1
			if got, want := s.Add(seq), !seen[seq]; got != want {
				t.Fatalf("seed %d: Add(%d) = %v, want %v", seed, seq, got, want)
			}
			seen[seq] = true
		}
		for seq := uint64(0); seq < 3100; seq++ {
			if s.Contains(seq) != seen[seq] {
				t.Fatalf("seed %d: Contains(%d) = %v", seed, seq, !seen[seq])
			}
		}
		rs := s.Ranges()
		for i := 1; i < len(rs); i++ {
			if rs[i].First <= rs[i-1].Last+1 {
				t.Fatalf("ranges %v and %v overlap or touch", rs[i-1], rs[i])
			}
		}
		var back Set
		if err := back.Decode(s.Append(nil)); err != nil {
			t.Fatal(err)
		}
		if len(back.Ranges()) != len(rs) {
			t.Fatalf("round trip: %d ranges, want %d", len(back.Ranges()), len(rs))
		}
		for i := range rs {
			if back.Ranges()[i] != rs[i] {
				t.Fatalf("round trip range %d: %v, want %v", i, back.Ranges()[i], rs[i])
			}
		}
	}
}

func TestMillionsInOrderStayOneRange(t *testing.T) {
	var s Set
	for seq := uint64(1); seq <= 3_000_000; seq++ {
		if !s.Add(seq) {
			t.Fatalf("seq %d reported duplicate", seq)
		}
	}
	if s.Len() != 1 || len(s.Append(nil)) > 8 {
		t.Fatalf("%d ranges, %d bytes encoded; want one range in a few bytes", s.Len(), len(s.Append(nil)))
	}
	if s.Add(1_234_567) {
		t.Fatal("resend of a stored seq counted as new")
	}
}

func TestHostileGapsAreBounded(t *testing.T) {
	var s Set
	for seq := uint64(1); seq <= 4*MaxRanges; seq += 2 {
		s.Add(seq)
	}
	if s.Len() > MaxRanges {
		t.Fatalf("%d ranges, bound is %d", s.Len(), MaxRanges)
	}
	if s.Closed == 0 {
		t.Fatal("no gap reported closed")
	}
	// The newest gaps are still open: their seqs are new.
	if !s.Add(4*MaxRanges - 2) {
		t.Fatal("a recent gap was closed")
	}
	// The oldest gap was closed: a reading there counts as a duplicate.
	if s.Add(2) {
		t.Fatal("a closed gap still accepts readings")
	}
}

func TestDecodeRejectsCorruptInput(t *testing.T) {
	for _, b := range [][]byte{nil, {0}, {0, 5, 1}, {0, 2, 1, 0, 0, 0}, {0, 1, 1, 0, 9}, {0, 0xff, 0xff, 0xff, 0xff, 0x0f}} {
		var s Set
		if err := s.Decode(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Decode(%x) = %v, want ErrCorrupt", b, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	var s Set
	for _, q := range []uint64{1, 2, 3, 7, 9, 100} {
		s.Add(q)
	}
	f.Add(s.Append(nil))
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Set
		if err := s.Decode(b); err != nil {
			return
		}
		var back Set
		if err := back.Decode(s.Append(nil)); err != nil {
			t.Fatalf("re-encoding of a decoded set does not decode: %v", err)
		}
		for i, r := range s.Ranges() {
			if r.First > r.Last || (i > 0 && r.First <= s.Ranges()[i-1].Last+1) {
				t.Fatalf("decoded set not sorted and disjoint: %v", s.Ranges())
			}
		}
	})
}

func BenchmarkAddInOrder(b *testing.B) {
	var s Set
	for i := 0; b.Loop(); i++ {
		s.Add(uint64(i) + 1)
	}
}
