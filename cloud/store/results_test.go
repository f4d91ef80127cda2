package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

func replayAll(t *testing.T, s *Store, after uint64) []LogEntry {
	t.Helper()
	var out []LogEntry
	if err := s.ReplayLog(context.Background(), after, func(e *LogEntry) error {
		out = append(out, *e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// Every deduplicated reading gets one offset, in the transaction that
// stores it; duplicates get none; offsets continue after a reopen.
func TestIngestLogHoldsEachReadingOnce(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	b := batch("dev-1", 7, 1, 10, t0)
	res, err := s.ApplyBatch("site", b, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstOffset != 1 || s.LogEnd() != 10 {
		t.Fatalf("first offset %d, log end %d; want 1 and 10", res.FirstOffset, s.LogEnd())
	}
	// A resend with 5 old and 5 new readings logs only the new ones.
	res, err = s.ApplyBatch("site", batch("dev-1", 7, 6, 10, t0), t0.Add(2*time.Second))
	if err != nil || res.Stored != 5 || res.FirstOffset != 11 {
		t.Fatalf("overlapping resend: %+v %v", res, err)
	}
	got := replayAll(t, s, 0)
	if len(got) != 15 {
		t.Fatalf("log holds %d readings, want 15", len(got))
	}
	for i, e := range got {
		seq := uint64(i + 1)
		want := b.Readings[0]
		if e.Offset != seq || e.Reading.Seq != seq || e.Reading.SeqEpoch != 7 || e.Reading.Device != "dev-1" ||
			e.Reading.Channel != want.Channel || e.Reading.Quantity != want.Quantity ||
			e.Reading.TimeNs != t0.Add(time.Duration(seq)*time.Second).UnixNano() || e.Reading.Value != float64(seq%97)*10.5 ||
			e.Reading.Quality != wire.TimeQuality_TIME_QUALITY_SYNCED {
			t.Fatalf("entry %d: %+v", i, e)
		}
		if wantRecv := t0.Add(time.Second); seq > 10 {
			if e.ReceivedNs != t0.Add(2*time.Second).UnixNano() {
				t.Fatalf("entry %d received %d", i, e.ReceivedNs)
			}
		} else if e.ReceivedNs != wantRecv.UnixNano() {
			t.Fatalf("entry %d received %d", i, e.ReceivedNs)
		}
	}
	if tail := replayAll(t, s, 12); len(tail) != 3 || tail[0].Offset != 13 {
		t.Fatalf("replay after 12: %+v", tail)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	if s.LogEnd() != 15 {
		t.Fatalf("log end after reopen %d, want 15", s.LogEnd())
	}
	if res, err := s.ApplyBatch("site", batch("dev-2", 1, 1, 1, t0), t0); err != nil || res.FirstOffset != 16 {
		t.Fatalf("after reopen: %+v %v", res, err)
	}
}

// Devices commit in parallel: the log never exposes an offset while a
// lower one may still appear, so a follower that reads up to LogEnd again
// and again sees every reading exactly once.
func TestIngestLogFollowerSeesEveryReadingOnce(t *testing.T) {
	s := openTest(t, t.TempDir(), WithSyncWrites(false))
	defer s.Close()
	const devices, batches, per = 8, 20, 25
	var wg sync.WaitGroup
	for d := range devices {
		wg.Go(func() {
			for i := range batches {
				if _, err := s.ApplyBatch("site", batch(fmt.Sprintf("dev-%d", d), 1, uint64(i*per+1), per, t0), t0); err != nil {
					t.Error(err)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[string]int{}
	var applied uint64
	follow := func() {
		if err := s.ReplayLog(context.Background(), applied, func(e *LogEntry) error {
			if e.Offset <= applied {
				return fmt.Errorf("offset %d after %d", e.Offset, applied)
			}
			applied = e.Offset
			seen[fmt.Sprintf("%s/%d", e.Reading.Device, e.Reading.Seq)]++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		follow()
	}
	follow()
	if len(seen) != devices*batches*per {
		t.Fatalf("follower saw %d distinct readings, want %d", len(seen), devices*batches*per)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s seen %d times", id, n)
		}
	}
}

func result(pipeline, device, channel string, startMin int, rev uint32, energy float64) window.Result {
	start := t0.Add(time.Duration(startMin) * time.Minute).UnixNano()
	return window.Result{
		Pipeline: pipeline, Key: window.Key{Device: device, Channel: channel, Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER},
		Start: start, End: start + int64(time.Minute), Revision: rev,
		Names: []string{"energy", "count"}, Values: []float64{energy, 3}, Count: 3, Coverage: 1,
		WorstQuality: wire.TimeQuality_TIME_QUALITY_SYNCED,
	}
}

// Results are upserts keeping the highest revision, every revision is
// history, late readings are kept once per identity, and the state comes
// back with the configuration that wrote it.
func TestEngineSinkUpsertsHistoryLateAndState(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	defer s.Close()
	sink := s.EngineSink("cfg-a")
	if st, err := sink.LoadState(ctx); err != nil || st != nil {
		t.Fatalf("empty store: state %v, %v", st, err)
	}
	late := window.LateReading{Pipeline: "p", Reading: window.Reading{Device: "dev-1", Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER,
		TimeNs: t0.UnixNano(), Value: 42, Quality: wire.TimeQuality_TIME_QUALITY_SYNCED, SeqEpoch: 3, Seq: 9},
		Windows: []window.Span{{Start: t0.UnixNano(), End: t0.Add(time.Minute).UnixNano()}}}
	out := window.Output{
		Results: []window.Result{result("p", "dev-1", "mains", 0, 1, 10), result("p", "dev-1", "mains", 0, 2, 12), result("p", "dev-1", "mains", 1, 1, 5),
			result("p", "dev-2", "mains", 0, 1, 7), result("q", "dev-1", "mains", 0, 1, 99)},
		Late: []window.LateReading{late},
	}
	if err := sink.Commit(ctx, out, []byte("state-1")); err != nil {
		t.Fatal(err)
	}
	// A replay re-commits an older revision and the same late reading.
	if err := sink.Commit(ctx, window.Output{Results: []window.Result{result("p", "dev-1", "mains", 0, 1, 10)}, Late: []window.LateReading{late}}, []byte("state-2")); err != nil {
		t.Fatal(err)
	}
	rs, err := s.Results(ResultQuery{Pipeline: "p", Device: "dev-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Revision != 2 || rs[0].Values["energy"] != 12 || rs[1].Values["energy"] != 5 || !rs[0].Start.Equal(t0) || rs[0].Quantity != "active_power" {
		t.Fatalf("latest results: %+v", rs)
	}
	hist, err := s.Results(ResultQuery{Pipeline: "p", Device: "dev-1", Channel: "mains", History: true})
	if err != nil || len(hist) != 3 || hist[0].Revision != 1 || hist[1].Revision != 2 {
		t.Fatalf("history: %+v %v", hist, err)
	}
	if rs, _ := s.Results(ResultQuery{Pipeline: "p", From: t0.Add(time.Minute)}); len(rs) != 1 || rs[0].Device != "dev-1" {
		t.Fatalf("from filter over every device: %+v", rs)
	}
	if rs, _ := s.Results(ResultQuery{Pipeline: "p", To: t0.Add(time.Minute)}); len(rs) != 2 {
		t.Fatalf("to filter over every device: %+v", rs)
	}
	if rs, _ := s.Results(ResultQuery{Pipeline: "p", Device: "dev-1", Channel: "other"}); len(rs) != 0 {
		t.Fatalf("unknown channel: %+v", rs)
	}
	ls, err := s.LateReadings(LateQuery{Device: "dev-1"})
	if err != nil || len(ls) != 1 || ls[0].Value != 42 || ls[0].Seq != 9 || len(ls[0].Windows) != 1 || !ls[0].Windows[0].End.Equal(t0.Add(time.Minute)) {
		t.Fatalf("late: %+v %v", ls, err)
	}
	if ls, _ := s.LateReadings(LateQuery{Device: "dev-1", From: t0.Add(time.Second)}); len(ls) != 0 {
		t.Fatalf("late from filter: %+v", ls)
	}
	if st, err := sink.LoadState(ctx); err != nil || string(st) != "state-2" {
		t.Fatalf("state %q, %v", st, err)
	}
	// Another configuration starts from nothing: its results are recomputed.
	other := s.EngineSink("cfg-b")
	if st, err := other.LoadState(ctx); err != nil || st != nil {
		t.Fatalf("other configuration: state %q, %v", st, err)
	}
	if rs, _ := s.Results(ResultQuery{Pipeline: "p"}); len(rs) != 0 {
		t.Fatalf("results of the old configuration kept: %+v", rs)
	}
	if ls, _ := s.LateReadings(LateQuery{Device: "dev-1"}); len(ls) != 0 {
		t.Fatalf("late readings of the old configuration kept: %+v", ls)
	}
}

func TestEngineSinkCommitHonoursContext(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.EngineSink("c").Commit(ctx, window.Output{}, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("commit with a cancelled context: %v", err)
	}
	if st, _ := s.EngineSink("c").LoadState(context.Background()); st != nil {
		t.Fatalf("state written by a cancelled commit: %q", st)
	}
}
