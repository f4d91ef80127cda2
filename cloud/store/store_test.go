package store

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/wire"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func openTest(t *testing.T, dir string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// batch builds a batch of n readings every second from seq first, on one channel.
func batch(device string, epoch, first uint64, n int, start time.Time) *wire.Batch {
	b := &wire.Batch{SchemaVersion: wire.SchemaVersion, DeviceId: device, SeqEpoch: epoch, BootId: "boot"}
	for i := 0; i < n; i++ {
		seq := first + uint64(i)
		b.Readings = append(b.Readings, &wire.Reading{
			Seq: seq, Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER,
			Value: float64(seq%97) * 10.5, WallNs: start.Add(time.Duration(seq) * time.Second).UnixNano(),
			TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED,
		})
	}
	return b
}

func TestApplyBatchDeduplicates(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	b := batch("dev-1", 7, 1, 100, t0)
	res, err := s.ApplyBatch("site", b, t0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != 100 || res.Duplicates != 0 || len(res.Seqs) != 100 {
		t.Fatalf("first apply: %+v", res)
	}
	res, err = s.ApplyBatch("site", b, t0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != 0 || res.Duplicates != 100 || len(res.Seqs) != 100 {
		t.Fatalf("resend: stored %d dup %d seqs %d", res.Stored, res.Duplicates, len(res.Seqs))
	}
	// Overlapping batch: 50 old, 50 new. A new epoch makes the same seqs new readings.
	if res, err = s.ApplyBatch("site", batch("dev-1", 7, 51, 100, t0), t0); err != nil || res.Stored != 50 || res.Duplicates != 50 {
		t.Fatalf("overlap: %+v %v", res, err)
	}
	if len(res.New) != 50 || res.New[0].Seq != 101 || res.New[49].Seq != 150 {
		t.Fatalf("new readings of the overlapping batch: %d, first %v", len(res.New), res.New[0])
	}
	if res, err = s.ApplyBatch("site", batch("dev-1", 8, 1, 10, t0), t0); err != nil || res.Stored != 10 {
		t.Fatalf("new epoch: %+v %v", res, err)
	}
	info, ok, err := s.Device("dev-1")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if info.ReadingsStored != 160 || info.Duplicates != 150 || info.Site != "site" {
		t.Fatalf("device info %+v", info)
	}
	n := 0
	if err := s.Readings("dev-1", "mains", wire.Quantity_QUANTITY_ACTIVE_POWER, time.Time{}, time.Time{}, func(Reading) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 160 {
		t.Fatalf("stored readings %d, want 160", n)
	}
}

func TestDuplicateWithinBatchCountedOnce(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	b := batch("d", 1, 1, 3, t0)
	b.Readings = append(b.Readings, b.Readings[1])
	res, err := s.ApplyBatch("s", b, t0)
	if err != nil || res.Stored != 3 || res.Duplicates != 1 {
		t.Fatalf("%+v %v", res, err)
	}
}

// direct computes the 1-minute windows of the readings from scratch.
func direct(readings []*wire.Reading, size time.Duration) map[int64]*aggregate {
	out := map[int64]*aggregate{}
	for _, r := range readings {
		st := windowStart(r.WallNs, size)
		a := out[st]
		if a == nil {
			a = &aggregate{}
			out[st] = a
		}
		a.add(r.Value)
	}
	return out
}

func TestWindowsMatchDirectComputationAndRevise(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, WithWindowSizes(time.Minute, 5*time.Minute), WithOutOfOrderness(5*time.Second))
	// 600 readings over 10 minutes, delivered in shuffled batches of 50.
	all := batch("d", 1, 0, 600, t0).Readings
	rng := rand.New(rand.NewPCG(1, 2))
	shuffled := append([]*wire.Reading(nil), all...)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for i := 0; i < len(shuffled); i += 50 {
		b := &wire.Batch{SchemaVersion: 1, DeviceId: "d", SeqEpoch: 1, Readings: shuffled[i : i+50]}
		if _, err := s.ApplyBatch("s", b, t0); err != nil {
			t.Fatal(err)
		}
		if i == 300 { // restart halfway: state must carry over exactly
			s.Close()
			s = openTest(t, dir, WithWindowSizes(time.Minute, 5*time.Minute), WithOutOfOrderness(5*time.Second))
		}
	}
	defer s.Close()
	for _, size := range []time.Duration{time.Minute, 5 * time.Minute} {
		want := direct(all, size)
		got, err := s.Windows(WindowQuery{Device: "d", Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Size: size})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("size %v: %d windows, want %d", size, len(got), len(want))
		}
		maxNs := all[len(all)-1].WallNs
		for _, w := range got {
			d := want[w.Start.UnixNano()]
			if d == nil {
				t.Fatalf("unexpected window %v", w.Start)
			}
			if w.Count != d.Count || w.Min != d.Min || w.Max != d.Max || math.Abs(w.Sum-d.Sum) > 1e-6 || math.Abs(w.Mean-d.Sum/float64(d.Count)) > 1e-9 {
				t.Fatalf("size %v window %v: got %+v, want %+v", size, w.Start, w, d)
			}
			shouldClose := w.End.UnixNano() <= maxNs-int64(5*time.Second)
			if w.Closed != shouldClose || (w.Closed && w.Revision < 1) || (!w.Closed && w.Revision != 0) {
				t.Fatalf("size %v window %v: closed %v revision %d, want closed %v", size, w.Start, w.Closed, w.Revision, shouldClose)
			}
		}
	}

	// A late reading into a closed window bumps its revision by one; its
	// redelivery changes nothing. Two late readings in one batch bump it by two.
	before, _ := s.Windows(WindowQuery{Device: "d", Channel: "mains", Size: time.Minute, Limit: 1})
	late := &wire.Batch{SchemaVersion: 1, DeviceId: "d", SeqEpoch: 1, Readings: []*wire.Reading{{
		Seq: 10_000, Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: 1e6,
		WallNs: t0.Add(time.Second).UnixNano(), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED,
	}}}
	for i := 0; i < 2; i++ {
		res, err := s.ApplyBatch("s", late, t0)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && res.WindowsRevised != 2 || i == 1 && res.WindowsRevised != 0 {
			t.Fatalf("delivery %d: revised %d", i, res.WindowsRevised)
		}
	}
	after, _ := s.Windows(WindowQuery{Device: "d", Channel: "mains", Size: time.Minute, Limit: 1})
	if after[0].Revision != before[0].Revision+1 || after[0].Count != before[0].Count+1 || after[0].Max != 1e6 {
		t.Fatalf("late reading: before %+v after %+v", before[0], after[0])
	}
	two := &wire.Batch{SchemaVersion: 1, DeviceId: "d", SeqEpoch: 1, Readings: []*wire.Reading{
		{Seq: 10_001, Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: 1, WallNs: t0.Add(2 * time.Second).UnixNano(), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED},
		{Seq: 10_002, Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: 2, WallNs: t0.Add(3 * time.Second).UnixNano(), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED},
	}}
	if _, err := s.ApplyBatch("s", two, t0); err != nil {
		t.Fatal(err)
	}
	final, _ := s.Windows(WindowQuery{Device: "d", Channel: "mains", Size: time.Minute, Limit: 1})
	if final[0].Revision != after[0].Revision+2 || final[0].Count != after[0].Count+2 {
		t.Fatalf("two late readings: before %+v after %+v", after[0], final[0])
	}
}

func TestWindowStartBeforeEpoch(t *testing.T) {
	if got := windowStart(-1, time.Minute); got != -int64(time.Minute) {
		t.Fatalf("windowStart(-1) = %d", got)
	}
	if got := windowStart(int64(time.Minute), time.Minute); got != int64(time.Minute) {
		t.Fatalf("windowStart(1m) = %d", got)
	}
}

func TestDeadLettersAndStatus(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	for i, reason := range []string{"malformed", "device_mismatch"} {
		if _, err := s.PutDeadLetter(DeadLetter{Reason: reason, Topic: "t", Received: t0.Add(time.Duration(i) * time.Second), Payload: []byte{0xff, byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	st := &wire.Status{SchemaVersion: 1, DeviceId: "d", Online: true, TimeZone: "Europe/Paris"}
	if err := s.PutStatus("site", st, t0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, dir)
	defer s.Close()
	dls, err := s.DeadLetters(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 2 || dls[0].Reason != "device_mismatch" || dls[1].Reason != "malformed" || dls[0].Payload[1] != 1 || dls[0].ID == dls[1].ID {
		t.Fatalf("dead letters after reopen: %+v", dls)
	}
	sts, err := s.Statuses()
	if err != nil || !sts["d"].Online || sts["d"].TimeZone != "Europe/Paris" {
		t.Fatalf("statuses %+v %v", sts, err)
	}
}

func TestLargeBatchIsAppliedInChunksExactlyOnce(t *testing.T) {
	s := openTest(t, t.TempDir(), WithOutOfOrderness(0))
	defer s.Close()
	n := 3*MaxReadingsPerTxn + 17
	b := batch("d", 1, 0, n, t0)
	b.Readings = append(b.Readings, b.Readings[5]) // a duplicate in a later chunk
	res, err := s.ApplyBatch("s", b, t0)
	if err != nil || res.Stored != n || res.Duplicates != 1 || len(res.Seqs) != n+1 {
		t.Fatalf("first: stored %d dup %d seqs %d err %v", res.Stored, res.Duplicates, len(res.Seqs), err)
	}
	if res, err = s.ApplyBatch("s", b, t0); err != nil || res.Stored != 0 || res.Duplicates != n+1 {
		t.Fatalf("resend: %d %d %v", res.Stored, res.Duplicates, err)
	}
	want := direct(b.Readings[:n], time.Minute)
	got, err := s.Windows(WindowQuery{Device: "d", Size: time.Minute, Limit: 100_000})
	if err != nil || len(got) != len(want) {
		t.Fatalf("%d windows (%v), want %d", len(got), err, len(want))
	}
	for _, w := range got {
		if d := want[w.Start.UnixNano()]; d == nil || d.Count != w.Count || math.Abs(d.Sum-w.Sum) > 1e-6 {
			t.Fatalf("window %v: %+v want %+v", w.Start, w, d)
		}
	}
}

func TestContiguousThrough(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	step := func(epoch, first uint64, n int, want uint64) {
		t.Helper()
		res, err := s.ApplyBatch("s", batch("d", epoch, first, n, t0), t0)
		if err != nil {
			t.Fatal(err)
		}
		if res.ContiguousThrough != want {
			t.Fatalf("after %d..%d of epoch %d: contiguous through %d, want %d", first, first+uint64(n)-1, epoch, res.ContiguousThrough, want)
		}
	}
	step(1, 2, 5, 0)  // seq 1 missing
	step(1, 1, 1, 6)  // fills the start; 2..6 were stored before
	step(1, 11, 5, 6) // gap 7..10
	step(2, 1, 3, 3)  // another epoch counts on its own
	s.Close()
	s = openTest(t, dir)
	defer s.Close()
	step(1, 7, 4, 15) // closes the gap after a restart
	step(1, 3, 2, 15) // a resend does not move it back
}

// Clocks that never synced stamp 1970 (or earlier, after a bad RTC): windows
// must still open and close by the device's watermark.
func TestWindowsBeforeTheEpochClose(t *testing.T) {
	s := openTest(t, t.TempDir(), WithOutOfOrderness(0))
	defer s.Close()
	start := time.Unix(-600, 0)
	if _, err := s.ApplyBatch("s", batch("d", 1, 0, 120, start), t0); err != nil {
		t.Fatal(err)
	}
	ws, err := s.Windows(WindowQuery{Device: "d", Size: time.Minute})
	if err != nil || len(ws) != 2 || !ws[0].Closed || ws[0].Count != 60 || ws[1].Closed {
		t.Fatalf("windows %+v %v", ws, err)
	}
	if _, err := s.ApplyBatch("s", batch("d", 1, 120, 61, start), t0); err != nil {
		t.Fatal(err)
	}
	ws, _ = s.Windows(WindowQuery{Device: "d", Size: time.Minute})
	if len(ws) != 4 || !ws[1].Closed || ws[1].Revision != 1 || !ws[2].Closed || ws[3].Closed {
		t.Fatalf("after the watermark moved: %+v", ws)
	}
}

func TestDeadLettersAreBounded(t *testing.T) {
	s := openTest(t, t.TempDir(), WithDeadLetterLimit(10))
	defer s.Close()
	for i := 0; i < 2*deadLetterTrimEvery+1; i++ {
		if _, err := s.PutDeadLetter(DeadLetter{Reason: "malformed", Received: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	dls, err := s.DeadLetters(1000)
	if err != nil {
		t.Fatal(err)
	}
	// Trimmed at the last put: exactly the newest 10 remain.
	if len(dls) != 10 || !dls[0].Received.Equal(t0.Add(2*deadLetterTrimEvery*time.Second)) {
		t.Fatalf("%d dead letters, newest %v", len(dls), dls[0].Received)
	}
}

func TestLatestWindows(t *testing.T) {
	s := openTest(t, t.TempDir(), WithWindowSizes(time.Minute, 5*time.Minute))
	defer s.Close()
	b := batch("d", 1, 0, 600, t0) // 10 minutes on "mains"
	for i, r := range b.Readings {
		if i%2 == 1 {
			r.Channel = "sub1"
		}
	}
	if _, err := s.ApplyBatch("s", b, t0); err != nil {
		t.Fatal(err)
	}
	got, err := s.LatestWindows("d", time.Minute, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 {
		t.Fatalf("%d windows, want 3 per series: %+v", len(got), got)
	}
	for i, w := range got {
		wantCh, wantStart := "mains", t0.Add(time.Duration(7+i%3)*time.Minute)
		if i >= 3 {
			wantCh = "sub1"
		}
		if w.Channel != wantCh || !w.Start.Equal(wantStart) || w.Size != time.Minute {
			t.Fatalf("window %d: %s %v, want %s %v", i, w.Channel, w.Start, wantCh, wantStart)
		}
	}
}

func TestWindowsQueryRanges(t *testing.T) {
	s := openTest(t, t.TempDir(), WithWindowSizes(time.Minute, 5*time.Minute))
	defer s.Close()
	b := batch("d", 1, 0, 1200, t0) // 20 minutes
	for i, r := range b.Readings {
		switch i % 3 {
		case 1:
			r.Channel = "sub1"
		case 2:
			r.Quantity = wire.Quantity_QUANTITY_VOLTAGE
		}
	}
	if _, err := s.ApplyBatch("s", b, t0); err != nil {
		t.Fatal(err)
	}
	count := func(q WindowQuery) int {
		t.Helper()
		q.Device = "d"
		ws, err := s.Windows(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			if w.Size != q.Size || !q.From.IsZero() && w.Start.Before(q.From) || !q.To.IsZero() && !w.Start.Before(q.To) ||
				q.Channel != "" && w.Channel != q.Channel || q.Quantity != 0 && w.Quantity != q.Quantity.Name() {
				t.Fatalf("query %+v returned %+v", q, w)
			}
		}
		return len(ws)
	}
	power, volt := wire.Quantity_QUANTITY_ACTIVE_POWER, wire.Quantity_QUANTITY_VOLTAGE
	for _, c := range []struct {
		q    WindowQuery
		want int
	}{
		{WindowQuery{Size: time.Minute}, 60},                                                             // 3 series x 20
		{WindowQuery{Size: 5 * time.Minute}, 12},                                                         // 3 series x 4
		{WindowQuery{Size: time.Minute, Channel: "mains"}, 40},                                           // power and voltage
		{WindowQuery{Size: time.Minute, Channel: "mains", Quantity: volt}, 20},                           // one series
		{WindowQuery{Size: time.Minute, Quantity: power}, 40},                                            // mains and sub1
		{WindowQuery{Size: time.Minute, From: t0.Add(5 * time.Minute)}, 45},                              // 15 per series
		{WindowQuery{Size: time.Minute, To: t0.Add(2 * time.Minute)}, 6},                                 // 2 per series
		{WindowQuery{Size: time.Minute, From: t0.Add(90 * time.Second), To: t0.Add(4 * time.Minute)}, 6}, // 2:00, 3:00
		{WindowQuery{Size: time.Minute, Limit: 7}, 7},
		{WindowQuery{Size: 2 * time.Minute}, 0},
	} {
		if got := count(c.q); got != c.want {
			t.Errorf("query %+v: %d windows, want %d", c.q, got, c.want)
		}
	}
}

func TestConcurrentApplyIsExact(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i := 0; i < 20; i++ {
				// Every goroutine sends every batch of two devices: each
				// reading must be stored once whoever wins.
				for _, dev := range []string{"a", fmt.Sprintf("d%d", g%4)} {
					if _, err := s.ApplyBatch("s", batch(dev, 1, uint64(i*10), 10, t0), t0); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, dev := range []string{"a", "d0", "d1", "d2", "d3"} {
		info, _, err := s.Device(dev)
		if err != nil || info.ReadingsStored != 200 {
			t.Fatalf("%s: %d readings stored (%v), want 200", dev, info.ReadingsStored, err)
		}
		ws, _ := s.Windows(WindowQuery{Device: dev, Size: time.Minute})
		var n uint64
		for _, w := range ws {
			n += w.Count
		}
		if n != 200 {
			t.Fatalf("%s: windows count %d readings, want 200", dev, n)
		}
	}
}
