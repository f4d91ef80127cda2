package wire

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func classOf(err error) error {
	for _, c := range []error{ErrMalformed, ErrSchemaVersion, ErrInvalid} {
		if errors.Is(err, c) {
			return c
		}
	}
	return err
}

// checkScanAgrees asserts that ScanBatch accepts exactly what DecodeBatch
// accepts, with the same error class, and reads the same values.
func checkScanAgrees(t *testing.T, data []byte) {
	t.Helper()
	b, derr := DecodeBatch(data)
	var views []ReadingView
	h, serr := ScanBatch(data, func(r *ReadingView) error {
		v := *r
		v.Channel = bytes.Clone(r.Channel)
		views = append(views, v)
		return nil
	})
	if (derr == nil) != (serr == nil) || classOf(derr) != classOf(serr) {
		t.Fatalf("DecodeBatch: %v; ScanBatch: %v (input %x)", derr, serr, data)
	}
	if derr != nil {
		return
	}
	if h.DeviceID != b.DeviceId || h.SeqEpoch != b.SeqEpoch || h.BootID != b.BootId || h.SentBootID != b.SentBootId ||
		h.SentMonoNs != b.SentMonoNs || h.SentWallNs != b.SentWallNs || h.SentTimeQuality != b.SentTimeQuality ||
		h.AgentVersion != b.AgentVersion || h.Readings != len(b.Readings) || len(views) != len(b.Readings) {
		t.Fatalf("header %+v differs from %v", h, b)
	}
	for i, r := range b.Readings {
		v := views[i]
		if v.Seq != r.Seq || string(v.Channel) != r.Channel || v.Quantity != r.Quantity || math.Float64bits(v.Value) != math.Float64bits(r.Value) ||
			v.WallNs != r.WallNs || v.MonoNs != r.MonoNs || v.TimeQuality != r.TimeQuality || v.TimeErrorNs != r.TimeErrorNs {
			t.Fatalf("reading %d: %+v differs from %v", i, v, r)
		}
	}
}

func scanSeeds(t testing.TB) [][]byte {
	good := &Batch{DeviceId: "dev-1", SeqEpoch: 9, BootId: "b", SentBootId: "b", SentMonoNs: 5, SentWallNs: 6,
		SentTimeQuality: TimeQuality_TIME_QUALITY_SYNCED, AgentVersion: "1.2",
		Readings: []*Reading{
			{Seq: 1, Channel: "mains", Quantity: Quantity_QUANTITY_ACTIVE_POWER, Value: 230.5, WallNs: 1e18, MonoNs: 7, TimeQuality: TimeQuality_TIME_QUALITY_SYNCED, TimeErrorNs: 3},
			{Seq: 2, Channel: "sub1", Quantity: Quantity_QUANTITY_ENERGY, Value: -1, WallNs: -5, TimeQuality: TimeQuality_TIME_QUALITY_ESTIMATED},
		}}
	p, err := EncodeBatch(good)
	if err != nil {
		t.Fatal(err)
	}
	bad := func(mut func(*Batch)) []byte {
		b := &Batch{DeviceId: "d", Readings: []*Reading{{Seq: 1, Channel: "c", Quantity: 1, Value: 1, TimeQuality: 1}}}
		mut(b)
		out, _ := EncodeBatch(b)
		return out
	}
	return [][]byte{p, nil, {0xff}, []byte("\xff\xfe garbage"),
		bad(func(b *Batch) { b.DeviceId = "a/b" }),
		bad(func(b *Batch) { b.Readings = nil }),
		bad(func(b *Batch) { b.Readings[0].Channel = "x/y" }),
		bad(func(b *Batch) { b.Readings[0].Channel = "\xff" }),
		bad(func(b *Batch) { b.Readings[0].Quantity = 999 }),
		bad(func(b *Batch) { b.Readings[0].Value = math.NaN() }),
		bad(func(b *Batch) { b.Readings[0].TimeQuality = 0 }),
		bad(func(b *Batch) { b.Readings[0].TimeErrorNs = -1 }),
		append(bad(func(*Batch) {}), 0x08, 0x02),      // schema_version 2 after the readings
		append(bad(func(*Batch) {}), 0x12, 0x01, 'z'), // device_id replaced after the readings
		append(bad(func(*Batch) {}), 0x10, 0x01),      // device_id with a varint: an unknown field
	}
}

func TestScanAgreesWithDecode(t *testing.T) {
	for _, s := range scanSeeds(t) {
		checkScanAgrees(t, s)
	}
}

func TestScanDoesNotAllocate(t *testing.T) {
	p := scanSeeds(t)[0]
	n := testing.AllocsPerRun(100, func() {
		if _, err := ScanBatch(p, func(*ReadingView) error { return nil }); err != nil {
			t.Fatal(err)
		}
	})
	// The header's strings are the only copies.
	if n > 4 {
		t.Fatalf("%v allocations per scan", n)
	}
}

func FuzzScanAgreesWithDecode(f *testing.F) {
	for _, s := range scanSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkScanAgrees(t, data) })
}

func BenchmarkDecodeBatch100(b *testing.B) { benchBatch(b, false) }
func BenchmarkScanBatch100(b *testing.B)   { benchBatch(b, true) }

func benchBatch(b *testing.B, scan bool) {
	bt := &Batch{DeviceId: "sim-0001", SeqEpoch: 1}
	for i := range 100 {
		bt.Readings = append(bt.Readings, &Reading{Seq: uint64(i + 1), Channel: "mains", Quantity: 1, Value: float64(i), WallNs: 1e18 + int64(i)*1e9, TimeQuality: 1})
	}
	p, _ := EncodeBatch(bt)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if scan {
			if _, err := ScanBatch(p, func(*ReadingView) error { return nil }); err != nil {
				b.Fatal(err)
			}
		} else if _, err := DecodeBatch(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "readings/s")
}
