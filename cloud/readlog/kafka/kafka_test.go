package kafka

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/cloud/readlog/readlogtest"
)

func TestPlacementAndPartitionCountAreKept(t *testing.T) {
	c := cluster(t)
	l := openLog(t, c, WithPartitions(8))
	for _, dev := range []string{"sim-00001", "gw-b827eb3a4c12", "site42-meter-7"} {
		p := readlog.PartitionFor([]byte(dev), 8)
		off, err := readlogtest.AppendWait(l, p, []byte(dev), []byte("batch"))
		if err != nil {
			t.Fatal(err)
		}
		keys, _ := readlogtest.ReadRange(t, l, p, off, off+1)
		if keys[0] != dev {
			t.Fatalf("partition %d offset %d holds %q, want %q", p, off, keys[0], dev)
		}
	}
	if _, err := Open(context.Background(), WithBrokers(c.ListenAddrs()...), WithLogger(quiet()), WithPartitions(16)); err == nil {
		t.Fatal("opening an 8-partition topic as 16 partitions: no error")
	}
	if _, err := Open(context.Background(), WithBrokers(c.ListenAddrs()...), WithLogger(quiet()), WithTopic("absent")); err == nil {
		t.Fatal("opening a missing topic without a partition count: no error")
	}
	l2 := openLog(t, c) // an existing topic's count is taken
	if l2.Partitions() != 8 {
		t.Fatalf("existing topic opened with %d partitions", l2.Partitions())
	}
	if _, err := Open(context.Background(), WithLogger(quiet())); err == nil {
		t.Fatal("no brokers: no error")
	}
	if _, err := Open(context.Background(), WithBrokers(c.ListenAddrs()...), WithSASL(SASL{Mechanism: "KERBEROS", Username: "u", Password: "p"})); err == nil {
		t.Fatal("unknown SASL mechanism: no error")
	}
}

func TestTrimmedOffsetsAreReported(t *testing.T) {
	c := cluster(t)
	l := openLog(t, c, WithPartitions(1))
	for range 10 {
		if _, err := readlogtest.AppendWait(l, 0, []byte("d"), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	r, err := l.Open(0, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Retention deletes records below 6 (what DeleteRecords does).
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: l.Topic(), Partition: 0, At: 6})
	if resp, err := l.adm.DeleteRecords(context.Background(), os); err != nil || resp.Error() != nil {
		t.Fatal(err, resp.Error())
	}
	var te *readlog.TrimmedError
	if _, err := l.Open(0, 3); !errors.As(err, &te) || !errors.Is(err, readlog.ErrTrimmed) || te.Available != 6 || te.Requested != 3 {
		t.Fatalf("open below the start: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if recs, err := r.Fetch(ctx, 100); !errors.As(err, &te) || te.Available != 6 || te.Requested != 2 {
		t.Fatalf("fetch of a deleted offset: %d records, %v", len(recs), err)
	}
	keys, _ := readlogtest.ReadRange(t, l, 0, 6, 10)
	if len(keys) != 4 {
		t.Fatalf("read %d records from 6", len(keys))
	}
}

// TestOutageDelaysAcksAndLosesNothing cuts every produce request (the
// connection is closed, as when a broker is unreachable): the append is not
// acknowledged while the outage lasts, and once the broker answers again it
// is acknowledged and stored exactly once (the idempotent producer's retries
// do not duplicate it).
func TestOutageDelaysAcksAndLosesNothing(t *testing.T) {
	c := cluster(t)
	l := openLog(t, c, WithPartitions(2))
	if _, err := readlogtest.AppendWait(l, 1, []byte("d"), []byte("before")); err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	var refused atomic.Int64
	down.Store(true)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !down.Load() {
			return nil, nil, false
		}
		refused.Add(1)
		return nil, errors.New("broker unreachable"), true
	})
	type ack struct {
		off        int64
		err        error
		duringDown bool
	}
	acked := make(chan ack, 1)
	if err := l.Append(context.Background(), 1, []byte("d"), []byte("during"), func(off int64, err error) {
		acked <- ack{off, err, down.Load()}
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two produce attempts refused", func() bool { return refused.Load() >= 2 })
	down.Store(false)
	a := <-acked
	if a.err != nil || a.duringDown || a.off != 1 {
		t.Fatalf("append across the outage: offset %d, err %v, acknowledged while down %v", a.off, a.err, a.duringDown)
	}
	_, values := readlogtest.ReadRange(t, l, 1, 0, 2)
	if values[0] != "before" || values[1] != "during" {
		t.Fatalf("partition holds %q", values)
	}
	_, end, err := l.Offsets(context.Background(), 1)
	if err != nil || end != 2 {
		t.Fatalf("partition end %d (%v), want 2: a retry was stored twice", end, err)
	}
}

// handler records a member's partitions.
type handler struct {
	mu     sync.Mutex
	owned  map[int]bool
	events chan string
}

func newHandler() *handler { return &handler{owned: map[int]bool{}, events: make(chan string, 100)} }

func (h *handler) Assigned(_ context.Context, ps []int) {
	h.mu.Lock()
	for _, p := range ps {
		h.owned[p] = true
	}
	h.mu.Unlock()
	h.events <- "assigned"
}

func (h *handler) Revoked(_ context.Context, ps []int) {
	h.mu.Lock()
	for _, p := range ps {
		delete(h.owned, p)
	}
	h.mu.Unlock()
	h.events <- "revoked"
}

func (h *handler) Lost(ps []int) { h.Revoked(context.Background(), ps) }

func (h *handler) partitions() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []int
	for p := range h.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// waitFor waits until cond holds, failing the test after 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGroupSplitsPartitionsAndMovesThemOnLeave(t *testing.T) {
	c := cluster(t)
	const n = 6
	la := openLog(t, c, WithPartitions(n))
	lb := openLog(t, c)
	ha, hb := newHandler(), newHandler()
	ma, err := la.Join("workers", ha)
	if err != nil {
		t.Fatal(err)
	}
	defer ma.Close()
	waitFor(t, "a owning every partition", func() bool { return len(ha.partitions()) == n })
	mb, err := lb.Join("workers", hb)
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	waitFor(t, "the partitions split between a and b", func() bool {
		a, b := ha.partitions(), hb.partitions()
		return len(a) > 0 && len(b) > 0 && len(a)+len(b) == n
	})
	if _, err := la.Join("workers", ha); err == nil {
		t.Fatal("second membership of one group in one log: no error")
	}
	a, b := ha.partitions(), hb.partitions()
	for _, p := range a {
		if slices.Contains(b, p) {
			t.Fatalf("partition %d owned by both members (a %v, b %v)", p, a, b)
		}
	}
	if got := mb.Owned(); !slices.Equal(got, b) {
		t.Fatalf("member b reports %v, its handler %v", got, b)
	}
	// Group offsets go through the member (with its generation).
	for _, p := range b {
		if err := lb.Commit("workers", p, 0); err != nil {
			t.Fatal(err)
		}
	}
	committed, err := la.Committed(context.Background(), "workers")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range b {
		if off, ok := committed[p]; !ok || off != 0 {
			t.Fatalf("partition %d committed %d (%v)", p, off, ok)
		}
	}
	// a leaves: its partitions are revoked, then b owns all.
	ma.Close()
	waitFor(t, "b owning every partition", func() bool { return len(hb.partitions()) == n })
	if len(ha.partitions()) != 0 {
		t.Fatalf("a still owns %v after leaving", ha.partitions())
	}
}

func TestAdminCommitWithoutAMember(t *testing.T) {
	c := cluster(t)
	l := openLog(t, c, WithPartitions(2))
	if _, err := readlogtest.AppendWait(l, 1, nil, []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit("monitor", 1, 1); err != nil {
		t.Fatal(err)
	}
	got, err := l.Committed(context.Background(), "monitor")
	if err != nil || got[1] != 1 {
		t.Fatalf("committed %v, %v", got, err)
	}
}
