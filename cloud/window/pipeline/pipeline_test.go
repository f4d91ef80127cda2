package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/cloud/window/pipeline"
	"github.com/gridedge/gridedge/shared/wire"
)

// memLog is a durable log: it survives "crashes" of the runner.
type memLog struct{ readings []window.Reading }

func (l *memLog) Replay(_ context.Context, after uint64, fn func(uint64, *window.Reading) error) error {
	for i := after; i < uint64(len(l.readings)); i++ {
		if err := fn(i+1, &l.readings[i]); err != nil {
			return err
		}
	}
	return nil
}

type resultID struct {
	pipeline string
	key      window.Key
	start    int64
}

// memSink commits atomically; fail makes the next commits fail.
type memSink struct {
	results map[resultID]window.Result
	late    []window.LateReading
	state   []byte
	fail    int
}

func newSink() *memSink { return &memSink{results: map[resultID]window.Result{}} }

func (s *memSink) Commit(_ context.Context, out window.Output, state []byte) error {
	if s.fail > 0 {
		s.fail--
		return errors.New("disk full")
	}
	for _, r := range out.Results {
		id := resultID{r.Pipeline, r.Key, r.Start}
		if prev, ok := s.results[id]; ok && prev.Revision >= r.Revision {
			continue // upsert keeps the highest revision
		}
		s.results[id] = r
	}
	s.late = append(s.late, out.Late...)
	s.state = append([]byte(nil), state...)
	return nil
}

func (s *memSink) LoadState(context.Context) ([]byte, error) { return s.state, nil }

func testLog(n int) *memLog {
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 3, 28, 22, 0, 0, 0, time.UTC).UnixNano()
	l := &memLog{}
	for i := range n {
		dev := fmt.Sprintf("home-%d", i%3)
		ch := []string{"mains", "sub1", "sub2", "sub3"}[i/3%4]
		// Mostly in order, some late and some very late.
		t := base + int64(i)*int64(5*time.Second)
		switch rng.IntN(50) {
		case 0:
			t -= int64(2 * time.Hour)
		case 1:
			t -= int64(3 * 24 * time.Hour)
		}
		l.readings = append(l.readings, window.Reading{
			Device: dev, Channel: ch, Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, TimeNs: t,
			Value: float64(rng.IntN(4000)), Quality: wire.TimeQuality_TIME_QUALITY_SYNCED, SeqEpoch: 1, Seq: uint64(i + 1),
		})
	}
	return l
}

// run feeds the log in batches of 37, crashing (dropping the runner with
// whatever it has not committed) before the batches listed in crashes.
func run(t *testing.T, l *memLog, sink *memSink, crashes map[int]bool) {
	t.Helper()
	ctx := context.Background()
	pipes := window.DefaultPipelines()
	r, err := pipeline.Open(ctx, pipes, l, sink, pipeline.WithCommitEvery(100))
	if err != nil {
		t.Fatal(err)
	}
	for b := 0; ; b++ {
		first := int(r.AppliedThrough())
		if first >= len(l.readings) {
			break
		}
		if crashes[b] {
			delete(crashes, b)
			if r, err = pipeline.Open(ctx, pipes, l, sink, pipeline.WithCommitEvery(100)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		end := min(first+37, len(l.readings))
		if err := r.Apply(ctx, uint64(first+1), l.readings[first:end], l.readings[first].TimeNs); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestCrashesLoseNothingAndCountNothingTwice(t *testing.T) {
	l := testLog(3000)
	want := newSink()
	run(t, l, want, nil)
	if len(want.results) == 0 || len(want.late) == 0 {
		t.Fatalf("reference run: %d results, %d late", len(want.results), len(want.late))
	}
	got := newSink()
	run(t, l, got, map[int]bool{0: true, 3: true, 17: true, 18: true, 40: true, 79: true})
	if len(got.results) != len(want.results) {
		t.Fatalf("%d results after crashes, want %d", len(got.results), len(want.results))
	}
	for id, w := range want.results {
		g := got.results[id]
		if g.Revision != w.Revision || fmt.Sprint(g.Values) != fmt.Sprint(w.Values) || g.Count != w.Count {
			t.Fatalf("%v: got %+v, want %+v", id, g, w)
		}
	}
	// The late stream is appended, not upserted: a crash must not lose or
	// repeat an entry.
	if len(got.late) != len(want.late) {
		t.Fatalf("%d late readings after crashes, want %d", len(got.late), len(want.late))
	}
}

func TestFailedCommitKeepsOutput(t *testing.T) {
	ctx := context.Background()
	l := testLog(600)
	want := newSink()
	run(t, l, want, nil)

	sink := newSink()
	r, err := pipeline.Open(ctx, window.DefaultPipelines(), &memLog{}, sink, pipeline.WithCommitEvery(1_000_000))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Apply(ctx, 1, l.readings[:300], 0); err != nil {
		t.Fatal(err)
	}
	sink.fail = 2
	for range 2 {
		if err := r.Commit(ctx); err == nil {
			t.Fatal("commit to a failing sink succeeded")
		}
	}
	if err := r.Apply(ctx, 301, l.readings[300:], 0); err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if len(sink.results) != len(want.results) || len(sink.late) != len(want.late) {
		t.Fatalf("after failed commits: %d results, %d late; want %d, %d", len(sink.results), len(sink.late), len(want.results), len(want.late))
	}
}

func TestOffsetsMustFollow(t *testing.T) {
	ctx := context.Background()
	r, err := pipeline.Open(ctx, window.DefaultPipelines(), &memLog{}, newSink())
	if err != nil {
		t.Fatal(err)
	}
	l := testLog(2)
	if err := r.Apply(ctx, 2, l.readings[:1], 0); err != nil {
		t.Fatalf("gap in offsets (a failed store write) refused: %v", err)
	}
	if err := r.Apply(ctx, 2, l.readings[1:2], 0); !errors.Is(err, pipeline.ErrOffset) {
		t.Fatalf("repeated offset: %v", err)
	}
	if err := r.Apply(ctx, 1, l.readings[1:2], 0); !errors.Is(err, pipeline.ErrOffset) {
		t.Fatalf("offset going back: %v", err)
	}
	if r.AppliedThrough() != 2 {
		t.Fatalf("applied through %d, want 2", r.AppliedThrough())
	}
}

// timedLog is a memLog that knows when each reading was received.
type timedLog struct {
	*memLog
	procNs int64
}

func (l timedLog) ReplayTimed(ctx context.Context, after uint64, fn func(uint64, int64, *window.Reading) error) error {
	return l.Replay(ctx, after, func(off uint64, r *window.Reading) error { return fn(off, l.procNs, r) })
}

// A replay after a restart must not make every device look idle: with a
// TimedLog the processing clock follows the readings' receive times, so a
// commit right after the replay emits no provisional result; a plain Log
// replays at processing time 0 and the next Advance finds every device
// silent since then.
func TestTimedReplayKeepsDevicesActive(t *testing.T) {
	ctx := context.Background()
	received := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC).UnixNano()
	provisional := func(log pipeline.Log) int {
		sink := newSink()
		r, err := pipeline.Open(ctx, window.DefaultPipelines(), log, sink)
		if err != nil {
			t.Fatal(err)
		}
		r.Advance(received + int64(time.Second))
		if err := r.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, res := range sink.results {
			if res.Provisional {
				n++
			}
		}
		return n
	}
	l := testLog(300)
	if n := provisional(timedLog{l, received}); n != 0 {
		t.Fatalf("timed replay: %d provisional results, want none", n)
	}
	if n := provisional(l); n == 0 {
		t.Fatal("untimed replay produced no provisional result: the test does not tell the two apart")
	}
}
