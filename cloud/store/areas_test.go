package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/store/seriesblock"
	"github.com/gridedge/gridedge/shared/wire"
)

func TestFlagsRoundTripThroughBlocks(t *testing.T) {
	s := open(t, t.TempDir())
	var enc seriesblock.Encoder
	want := []Flags{0, FlagFuture, FlagImplausible, FlagFuture | FlagImplausible}
	for i, f := range want {
		p := seriesblock.Point{TimeNs: t0.Add(time.Duration(i) * time.Second).UnixNano(), Value: float64(i), Seq: uint64(i),
			Quality: PackQuality(wire.TimeQuality_TIME_QUALITY_ESTIMATED, f)}
		if err := enc.Append(p); err != nil {
			t.Fatal(err)
		}
	}
	b := s.NewBatch(0)
	b.PutBlock("dev", "mains", wire.Quantity_QUANTITY_ACTIVE_POWER, t0.UnixNano(), 0, 0, enc.Bytes())
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	var got []Reading
	if err := s.Readings("dev", "mains", wire.Quantity_QUANTITY_ACTIVE_POWER, time.Time{}, time.Time{}, func(r Reading) error {
		got = append(got, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d readings, want %d", len(got), len(want))
	}
	for i, r := range got {
		if r.Flags != want[i] || r.TimeQuality != wire.TimeQuality_TIME_QUALITY_ESTIMATED {
			t.Errorf("reading %d: flags %v quality %v, want %v estimated", i, r.Flags, r.TimeQuality, want[i])
		}
	}
	if n := (FlagFuture | FlagImplausible).Names(); len(n) != 2 || n[0] != "future" || n[1] != "implausible" {
		t.Errorf("Names = %v", n)
	}
}

func TestDeadLettersListWithoutPayloadAndServeOneByID(t *testing.T) {
	s := open(t, t.TempDir())
	var ids []uint64
	for i := range 5 {
		id, err := s.PutDeadLetter(DeadLetter{Reason: "malformed", Topic: "t", Received: t0.Add(time.Duration(i) * time.Second),
			Payload: make([]byte, 1000*(i+1))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var listed []DeadLetter
	if err := s.DeadLetters(3, func(dl *DeadLetter) error { listed = append(listed, *dl); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 3 || listed[0].ID != ids[4] || listed[2].ID != ids[2] {
		t.Fatalf("listed %+v, want the newest three, newest first", listed)
	}
	for _, dl := range listed {
		if dl.Payload != nil || dl.Bytes != 1000*int(dl.ID-ids[0]+1) {
			t.Fatalf("listing carries %d payload bytes, size %d", len(dl.Payload), dl.Bytes)
		}
	}
	dl, ok, err := s.DeadLetter(ids[1])
	if err != nil || !ok || len(dl.Payload) != 2000 {
		t.Fatalf("DeadLetter(%d) = %d bytes, %v, %v; want its 2000-byte payload", ids[1], len(dl.Payload), ok, err)
	}
	if _, ok, err := s.DeadLetter(999); ok || err != nil {
		t.Fatalf("DeadLetter(999) = %v, %v; want not found", ok, err)
	}
}

func TestConflictsAreBoundedAndIdempotent(t *testing.T) {
	s := open(t, t.TempDir())
	for i := range 30 {
		b := s.NewBatch(1)
		c := Conflict{Device: fmt.Sprintf("dev-%d", i%3), SeqEpoch: 1, Seq: uint64(i), Received: t0.Add(time.Duration(i) * time.Minute),
			Offered: ConflictReading{Channel: "mains", Quantity: "active_power", Value: float64(i)}}
		if err := b.PutConflict(c, int64(i), 0); err != nil {
			t.Fatal(err)
		}
		// A re-read of the same record writes the same key.
		if err := b.PutConflict(c, int64(i), 0); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	count := func(q ConflictQuery) (n int, newest uint64) {
		t.Helper()
		first := true
		if err := s.Conflicts(q, func(c *Conflict) error {
			if first {
				newest, first = c.Seq, false
			}
			n++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return n, newest
	}
	if n, newest := count(ConflictQuery{Limit: 1000}); n != 30 || newest != 29 {
		t.Fatalf("%d conflicts, newest seq %d; want 30, 29", n, newest)
	}
	if n, _ := count(ConflictQuery{Device: "dev-1", Limit: 1000}); n != 10 {
		t.Fatalf("dev-1 has %d conflicts, want 10", n)
	}
	st, err := s.Trim(context.Background(), t0.Add(30*time.Minute), Retention{MaxConflicts: 20, Conflicts: 25 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Age removes seqs 0..4 (received more than 25 minutes before); the
	// count bound keeps the newest 20.
	if n, newest := count(ConflictQuery{Limit: 1000}); n != 20 || newest != 29 {
		t.Fatalf("after trim: %d conflicts, newest %d; want 20, 29 (trim stats %+v)", n, newest, st)
	}
}

func TestDevicesMergesCountersAndStatusesInIDOrder(t *testing.T) {
	s := open(t, t.TempDir())
	b := s.NewBatch(0)
	for _, id := range []string{"b", "d", "a"} {
		if err := b.PutDevice(&DeviceInfo{ID: id, ReadingsStored: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"c", "d"} {
		if err := b.PutStatus(Status{Device: id, Online: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	list := func(after string) string {
		out := ""
		if err := s.Devices(after, func(id string, info *DeviceInfo, st *Status) error {
			out += id
			if info != nil {
				out += "i"
			}
			if st != nil {
				out += "s"
			}
			out += " "
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := list(""); got != "ai bi cs dis " {
		t.Fatalf("Devices = %q", got)
	}
	if got := list("b"); got != "cs dis " {
		t.Fatalf("Devices after b = %q", got)
	}
}
