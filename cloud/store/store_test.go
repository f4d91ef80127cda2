package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/store/seriesblock"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

var t0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// writeDays stores days of 1 Hz readings of one series as 64-point blocks,
// one result per minute and a late reading per hour.
func writeDays(t *testing.T, s *Store, from time.Time, days int) {
	t.Helper()
	for d := range days {
		b := s.NewBatch(0)
		var enc seriesblock.Encoder
		var first seriesblock.Point
		flush := func() {
			if enc.Len() > 0 {
				b.PutBlock("dev", "mains", wire.Quantity_QUANTITY_ACTIVE_POWER, first.TimeNs, first.Epoch, first.Seq, enc.Bytes())
				enc.Reset()
			}
		}
		var out window.Output
		day := from.Add(time.Duration(d) * 24 * time.Hour)
		for i := range 86400 {
			at := day.Add(time.Duration(i) * time.Second)
			p := seriesblock.Point{TimeNs: at.UnixNano(), Value: float64(i % 977), Quality: 1, Epoch: 1, Seq: uint64(d*86400 + i), ReceivedNs: at.UnixNano()}
			if enc.Len() == 0 {
				first = p
			}
			if err := enc.Append(p); err != nil {
				t.Fatal(err)
			}
			if enc.Len() == 64 {
				flush()
			}
			if i%60 == 0 {
				out.Results = append(out.Results, window.Result{Pipeline: "p", Key: window.Key{Device: "dev", Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER},
					Start: at.UnixNano(), End: at.Add(time.Minute).UnixNano(), Revision: 1, Names: []string{"mean"}, Values: []float64{1}})
			}
			if i%3600 == 0 {
				out.Late = append(out.Late, window.LateReading{Pipeline: "p", Reading: window.Reading{Device: "dev", Channel: "mains",
					Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, TimeNs: at.UnixNano(), Value: 1, SeqEpoch: 1, Seq: uint64(i)}})
			}
		}
		flush()
		if err := b.PutOutput(out); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PutDeadLetter(DeadLetter{Reason: "malformed", Received: from, Payload: make([]byte, 1000)}); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, s *Store, from, to time.Time) (readings, results, late int) {
	t.Helper()
	err := s.Readings("dev", "mains", wire.Quantity_QUANTITY_ACTIVE_POWER, from, to, func(Reading) error { readings++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	err = s.Results(ResultQuery{Pipeline: "p", Device: "dev", From: from, To: to, Limit: 1 << 30}, func(*WindowResult) error { results++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	err = s.LateReadings(LateQuery{Device: "dev", From: from, To: to, Limit: 1 << 30}, func(*LateReading) error { late++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return readings, results, late
}

// Raw readings are stored compactly, read back exactly, and data past its
// retention is deleted with its disk space returned.
func TestRetentionDeletesAndReturnsSpace(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	writeDays(t, s, t0, 6)
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	full := s.TableBytes()
	t.Logf("6 days × 86,400 readings, a result a minute, a late reading an hour: %d bytes of tables (%.2f B per reading), %d on disk with the write-ahead log",
		full, float64(full)/float64(6*86400), s.DiskBytes())
	if r, res, l := count(t, s, time.Time{}, time.Time{}); r != 6*86400 || res != 6*1440 || l != 6*24 {
		t.Fatalf("stored %d readings, %d results, %d late; want %d, %d, %d", r, res, l, 6*86400, 6*1440, 6*24)
	}
	// Keep the newest two days.
	now := t0.Add(6 * 24 * time.Hour)
	ret := Retention{Readings: 2 * 24 * time.Hour, Results: 2 * 24 * time.Hour, Late: 2 * 24 * time.Hour, DeadLetters: time.Hour}
	if _, err := s.Trim(context.Background(), now, ret); err != nil {
		t.Fatal(err)
	}
	keep := now.Add(-2 * 24 * time.Hour)
	if r, res, l := count(t, s, time.Time{}, keep.Add(-MaxBlockSpan)); r != 0 || res != 0 || l != 0 {
		t.Fatalf("past retention: %d readings, %d results, %d late remain", r, res, l)
	}
	if r, res, l := count(t, s, keep, time.Time{}); r != 2*86400 || res != 2*1440 || l != 2*24 {
		t.Fatalf("within retention: %d readings, %d results, %d late; want all of the last two days", r, res, l)
	}
	dls := 0
	if err := s.DeadLetters(10, func(*DeadLetter) error { dls++; return nil }); err != nil || dls != 0 {
		t.Fatalf("%d dead letters past their retention (%v)", dls, err)
	}
	if after := s.TableBytes(); float64(after) > 0.5*float64(full) {
		t.Fatalf("tables %d bytes after trimming two thirds of %d: space not returned", after, full)
	}
}

func TestReadingsRoundTripInTimeOrderAcrossOverlappingBlocks(t *testing.T) {
	s := open(t, t.TempDir())
	b := s.NewBatch(0)
	// Two blocks of the same series whose times interleave (a backlog
	// replayed beside live data).
	for blk, offset := range []int64{0, 500} {
		var enc seriesblock.Encoder
		for i := range 10 {
			ns := t0.UnixNano() + offset*int64(time.Millisecond) + int64(i)*int64(time.Second)
			_ = enc.Append(seriesblock.Point{TimeNs: ns, Value: float64(blk*100 + i), Epoch: 1, Seq: uint64(blk*100 + i)})
		}
		b.PutBlock("d", "c", wire.Quantity_QUANTITY_VOLTAGE, t0.UnixNano()+offset*int64(time.Millisecond), 1, uint64(blk*100), enc.Bytes())
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	var prev time.Time
	n := 0
	err := s.Readings("d", "c", wire.Quantity_QUANTITY_VOLTAGE, t0.Add(2*time.Second), t0.Add(8*time.Second), func(r Reading) error {
		if r.Time.Before(prev) {
			t.Fatalf("reading at %v after %v", r.Time, prev)
		}
		prev = r.Time
		n++
		return nil
	})
	if err != nil || n != 12 {
		t.Fatalf("%d readings in [2 s, 8 s), %v; want 12", n, err)
	}
}

func TestOpenRefusesAnEarlierReleasesDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"KEYREGISTRY", "000001.vlog", "MANIFEST"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Open(dir)
	if !errors.Is(err, ErrOldFormat) {
		t.Fatalf("Open of a Badger directory: %v, want ErrOldFormat", err)
	}
	t.Log(err)
}
