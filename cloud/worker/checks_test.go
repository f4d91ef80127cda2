package worker

import (
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/intake"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/shared/wire"
)

func reading(seq uint64, at time.Time, v float64) *wire.Reading {
	return &wire.Reading{Seq: seq, Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: v,
		WallNs: at.UnixNano(), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED}
}

func (r *rig) send(device string, epoch uint64, rs ...*wire.Reading) {
	r.t.Helper()
	p, err := wire.EncodeBatch(&wire.Batch{SchemaVersion: wire.SchemaVersion, DeviceId: device, SeqEpoch: epoch, Readings: rs})
	if err != nil {
		r.t.Fatal(err)
	}
	r.append(intake.KindData, device, p)
}

func (r *rig) stored(device string) []store.Reading {
	r.t.Helper()
	var out []store.Reading
	if err := r.st.Readings(device, "mains", wire.Quantity_QUANTITY_ACTIVE_POWER, time.Time{}, time.Time{}, func(rd store.Reading) error {
		out = append(out, rd)
		return nil
	}); err != nil {
		r.t.Fatal(err)
	}
	return out
}

// One reading dated a year ahead is stored, flagged and counted, and the
// device's later readings are windowed on time, not called late.
func TestFutureReadingNeverAdvancesTheWatermark(t *testing.T) {
	r := newRig(t, 0)
	r.send("dev", 1, reading(1, t0.Add(365*24*time.Hour), 500))
	for s := uint64(2); s <= 200; s++ {
		r.send("dev", 1, reading(s, t0.Add(time.Duration(s)*time.Second), 100))
	}
	st := r.waitFor("200 readings committed", func(s Stats) bool { return s.Stored == 200 && s.Committed == 200 })
	if st.Future != 1 || st.Engine.Late != 0 || st.Engine.Readings != 199 {
		t.Fatalf("future %d, late %d, windowed %d; want 1 future reading, none late, 199 windowed", st.Future, st.Engine.Late, st.Engine.Readings)
	}
	closed := 0
	if err := r.st.Results(store.ResultQuery{Pipeline: "p1m", Device: "dev"}, func(res *store.WindowResult) error {
		if !res.Provisional {
			closed++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if closed < 3 {
		t.Fatalf("%d closed minutes, want minutes 0..2 closed by the on-time readings", closed)
	}
	rds := r.stored("dev")
	last := rds[len(rds)-1]
	if len(rds) != 200 || last.Seq != 1 || last.Flags != store.FlagFuture || rds[0].Flags != 0 {
		t.Fatalf("stored %d readings, newest seq %d flags %v; want 200 with the future one flagged", len(rds), last.Seq, last.Flags)
	}
	info, _, _ := r.st.Device("dev")
	if info.Flagged != 1 || info.MaxEventNs > t0.Add(time.Hour).UnixNano() {
		t.Fatalf("device: flagged %d, newest event %v", info.Flagged, time.Unix(0, info.MaxEventNs))
	}
}

// An absurd value is stored flagged, counted, and kept out of the windows.
func TestImplausibleValueIsFlaggedNotWindowed(t *testing.T) {
	r := newRig(t, 0, func(c *Config) { c.Limits = DefaultLimits() })
	r.send("dev", 1, reading(1, t0.Add(time.Second), 100), reading(2, t0.Add(2*time.Second), 5e12), reading(3, t0.Add(3*time.Second), 300))
	st := r.waitFor("committed", func(s Stats) bool { return s.Stored == 3 && s.Committed == 1 })
	if st.Implausible != 1 || st.Engine.Readings != 2 {
		t.Fatalf("implausible %d, windowed %d; want 1 and 2", st.Implausible, st.Engine.Readings)
	}
	rds := r.stored("dev")
	if len(rds) != 3 || rds[1].Flags != store.FlagImplausible || rds[1].Value != 5e12 {
		t.Fatalf("stored %+v; want the absurd value kept, flagged implausible", rds)
	}
}

func conflicts(t *testing.T, st *store.Store) []store.Conflict {
	t.Helper()
	var out []store.Conflict
	if err := st.Conflicts(store.ConflictQuery{Limit: 1000}, func(c *store.Conflict) error { out = append(out, *c); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// A batch reusing stored identities with other values is a conflict,
// counted and kept; the first stored values stay. An honest resend is a
// plain duplicate, whether its original is still in memory or only in the
// store (after a restart).
func TestSeqPoisoningIsAConflictAndTheFirstValueStays(t *testing.T) {
	r := newRig(t, 0)
	var first, other []*wire.Reading
	for s := uint64(1); s <= 10; s++ {
		first = append(first, reading(s, t0.Add(time.Duration(s)*time.Second), float64(s)))
		other = append(other, reading(s, t0.Add(time.Duration(s)*time.Second), float64(1000+s)))
	}
	r.send("dev", 1, first...)
	r.send("dev", 1, other...) // in the open block still
	r.send("dev", 1, first...) // honest resend
	st := r.waitFor("committed", func(s Stats) bool { return s.Records == 3 && s.Committed == 3 })
	if st.Conflicts != 10 || st.Duplicates != 20 {
		t.Fatalf("conflicts %d, duplicates %d; want 10 conflicts among 20 duplicates", st.Conflicts, st.Duplicates)
	}
	// After a restart the originals are only in the store.
	r.stop()
	r.run()
	r.send("dev", 1, other...)
	r.send("dev", 1, first...)
	moved := reading(5, t0.Add(5*time.Second), 5)
	moved.Channel = "other"
	r.send("dev", 1, moved)
	r.waitFor("re-sent batches read", func(s Stats) bool { return s.Records == 3 && s.Committed == 6 })
	cs := conflicts(t, r.st)
	if len(cs) != 21 {
		t.Fatalf("%d conflicts kept, want 21 (10 before the restart, 10 after, 1 on another channel)", len(cs))
	}
	if c := cs[0]; c.Stored != nil || c.Offered.Channel != "other" || c.Seq != 5 {
		t.Fatalf("newest conflict %+v; want seq 5 offered on channel other, its original not found there", c)
	}
	if c := cs[1]; c.Stored == nil || c.Stored.Value != float64(c.Seq) || c.Offered.Value != float64(1000+c.Seq) {
		t.Fatalf("conflict %+v; want the stored and the offered value", c)
	}
	for i, rd := range r.stored("dev") {
		if rd.Value != float64(i+1) {
			t.Fatalf("stored seq %d = %v, want the first value %d", rd.Seq, rd.Value, i+1)
		}
	}
	info, _, _ := r.st.Device("dev")
	if info.Conflicts != 21 {
		t.Fatalf("device conflicts %d, want 21", info.Conflicts)
	}
}

// A resent estimated reading whose time moved more than the tolerance
// cannot be told from a re-dated one: counted unverified, not a conflict.
func TestMovedEstimatedReadingIsUnverified(t *testing.T) {
	r := newRig(t, 0)
	a := reading(1, t0, 1)
	a.TimeQuality = wire.TimeQuality_TIME_QUALITY_ESTIMATED
	b := reading(1, t0.Add(time.Hour), 1)
	b.TimeQuality = wire.TimeQuality_TIME_QUALITY_CORRECTED
	r.send("dev", 1, a)
	r.send("dev", 1, b)
	st := r.waitFor("committed", func(s Stats) bool { return s.Records == 2 && s.Committed == 2 })
	if st.Conflicts != 0 || st.Unverified != 1 || st.Duplicates != 1 {
		t.Fatalf("conflicts %d, unverified %d, duplicates %d; want 0, 1, 1", st.Conflicts, st.Unverified, st.Duplicates)
	}
}

// Below the disk's write floor the worker neither reads nor commits; it
// resumes by itself when space returns.
func TestWorkerHoldsCommitsWhileTheDiskIsFull(t *testing.T) {
	var canWrite atomic.Bool
	r := newRig(t, 0, func(c *Config) { c.CanWrite = canWrite.Load })
	r.send("dev", 1, reading(1, t0, 1), reading(2, t0.Add(time.Second), 2))
	st := r.waitFor("three disk waits", func(s Stats) bool { return s.DiskWaits >= 3 })
	if st.Records != 0 || st.Commits != 0 {
		t.Fatalf("while the disk is full: %d records read, %d commits; want none", st.Records, st.Commits)
	}
	canWrite.Store(true)
	r.waitFor("stored once space returned", func(s Stats) bool { return s.Stored == 2 && s.Committed == 1 })
	if n := len(r.stored("dev")); n != 2 {
		t.Fatalf("%d readings stored, want 2", n)
	}
}

func TestDefaultLimitsAreOrdered(t *testing.T) {
	for q, l := range DefaultLimits() {
		if !(l.Min < l.Max) || math.IsNaN(l.Min) || math.IsNaN(l.Max) {
			t.Errorf("%v: %+v", q, l)
		}
	}
}
