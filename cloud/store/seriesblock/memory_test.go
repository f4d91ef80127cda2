package seriesblock

import (
	"math/rand/v2"
	"runtime"
	"testing"
)

// slackBytes bounds the rounding of the smallest column buffers (one
// allocation size class each).
const slackBytes = numColumns * 8

func encodedColumns(e *Encoder) int {
	return len(e.times.buf) + len(e.seqs.buf) + len(e.values.buf) + len(e.epochs.buf) +
		len(e.qualities.buf) + len(e.errs.buf) + len(e.recvds.buf)
}

// The documented bound holds after every append, for every input shape:
// SizeBytes ≤ FixedBytes + 2 × encoded bytes + slackBytes, and the encoded
// bytes never exceed the block; no point adds more than 72 encoded bytes.
func TestSizeBytesBound(t *testing.T) {
	if FixedBytes > 400 {
		t.Fatalf("FixedBytes = %d, documented as at most 400", FixedBytes)
	}
	r := rand.New(rand.NewPCG(11, 11))
	for _, g := range generators {
		var e Encoder
		prev := 0
		for i, p := range g.gen(r, 2000) {
			if err := e.Append(p); err != nil {
				t.Fatal(err)
			}
			enc := encodedColumns(&e)
			if enc-prev > 72 {
				t.Fatalf("%s: point %d added %d encoded bytes, documented at most 72", g.name, i, enc-prev)
			}
			prev = enc
			if got, bound := e.SizeBytes(), FixedBytes+2*enc+slackBytes; got > bound {
				t.Fatalf("%s after %d points: SizeBytes %d > bound %d", g.name, i+1, got, bound)
			}
			if blk := len(e.Bytes()); enc > blk {
				t.Fatalf("%s: %d column bytes held, block is %d", g.name, enc, blk)
			}
		}
	}
}

// SizeBytes is what the heap actually holds: 20,000 open encoders of 128
// household readings each (as the collector keeps one per active series)
// take no more heap than their SizeBytes say, within the rounding of the
// Encoder's own allocation.
func TestHeapPerEncoder(t *testing.T) {
	if householdCSV(t) == "" {
		t.Skip("household data not found under testdata/household or ../shared/data of the module root")
	}
	var src []Point
	for _, m := range measuredSet(t) {
		if m.name == "household/active-power-W/1s" {
			src = m.ps
		}
	}
	const encoders, points = 20000, 128
	keep := make([]*Encoder, encoders)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sum := 0
	for i := range keep {
		e := new(Encoder)
		off := i % (len(src) - points)
		for _, p := range src[off : off+points] {
			if err := e.Append(p); err != nil {
				t.Fatal(err)
			}
		}
		keep[i] = e
		sum += e.SizeBytes()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(after.HeapAlloc-before.HeapAlloc) / encoders
	mean := float64(sum) / encoders
	t.Logf("%d encoders × %d points: heap %.0f B/encoder, SizeBytes %.0f B/encoder, FixedBytes %d", encoders, points, heap, mean, FixedBytes)
	if heap > mean+64 {
		t.Fatalf("heap %.0f B per encoder exceeds SizeBytes %.0f B + 64", heap, mean)
	}
	runtime.KeepAlive(keep)
}
