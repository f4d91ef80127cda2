package kafka

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// readState returns the committed values of topic's partition 0 by key,
// read up to the offset until.
func readState(t *testing.T, l *Log, topic string, until int64) map[string]string {
	t.Helper()
	out := map[string]string{}
	if err := l.ReadCommitted(context.Background(), topic, 0, 0, until, func(r *kgo.Record) error {
		out[string(r.Key)] = string(r.Value)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTxnCommitsAllOrNothingAndFences: a transaction's records and the
// group offset become visible together; a second producer of the same
// partition fences the first, whose open transaction is aborted (its
// records never reach read_committed readers) and whose next commit fails
// with ErrFenced.
func TestTxnCommitsAllOrNothingAndFences(t *testing.T) {
	c := cluster(t)
	l := openLog(t, c, WithPartitions(2))
	ctx := context.Background()
	if err := l.EnsureTopics(ctx, TopicSpec{Name: "state", Partitions: 2, Compact: true}, TopicSpec{Name: "out", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	a, err := l.NewTxn(ctx, "workers", 0, "state")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	recs := []*kgo.Record{{Topic: "state", Key: []byte("k"), Value: []byte("v1")}, {Topic: "out", Key: []byte("d"), Value: []byte("r1")}}
	if err := a.Commit(ctx, recs, 7); err != nil {
		t.Fatal(err)
	}
	if off, err := l.Committed(ctx, "workers"); err != nil || off[0] != 7 {
		t.Fatalf("group offset of partition 0 after the commit: %v (%v), want 7", off, err)
	}

	// The second owner fences the first; the first's commit is refused.
	b, err := l.NewTxn(ctx, "workers", 0, "state")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = a.Commit(ctx, []*kgo.Record{{Topic: "state", Key: []byte("k"), Value: []byte("zombie")}}, 99)
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("commit of a fenced producer: %v, want ErrFenced", err)
	}
	got := readState(t, l, "state", b.Fence("state"))
	if got["k"] != "v1" {
		t.Fatalf("state after the fence: %q, want the committed v1 (the zombie's write must be invisible)", got)
	}
	if off, _ := l.Committed(ctx, "workers"); off[0] != 7 {
		t.Fatalf("group offset after the zombie's refused commit: %d, want 7", off[0])
	}
	if err := b.Commit(ctx, []*kgo.Record{{Topic: "state", Key: []byte("k"), Value: []byte("v2")}}, 9); err != nil {
		t.Fatal(err)
	}
	c2, err := l.NewTxn(ctx, "workers", 0, "state")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got := readState(t, l, "state", c2.Fence("state")); got["k"] != "v2" {
		t.Fatalf("state read by the third owner: %q, want v2", got)
	}
	if off, _ := l.Committed(ctx, "workers"); off[0] != 9 {
		t.Fatalf("group offset: %d, want 9", off[0])
	}
}

// TestTxnAbortIsInvisible: a transaction that fails (a produce refused) is
// aborted: none of its records reaches a read_committed reader, and the
// group offset stays.
func TestTxnAbortIsInvisible(t *testing.T) {
	c := cluster(t)
	l := openLog(t, c, WithPartitions(1))
	ctx := context.Background()
	if err := l.EnsureTopics(ctx, TopicSpec{Name: "state", Partitions: 1, Compact: true}); err != nil {
		t.Fatal(err)
	}
	a, err := l.NewTxn(ctx, "workers", 0, "state")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Commit(ctx, []*kgo.Record{{Topic: "state", Key: []byte("k"), Value: []byte("v1")}}, 3); err != nil {
		t.Fatal(err)
	}
	// A record for a partition that does not exist fails the transaction
	// after the first record was produced.
	err = a.Commit(ctx, []*kgo.Record{{Topic: "state", Key: []byte("k"), Value: []byte("lost")},
		{Topic: "state", Partition: 5, Key: []byte("x"), Value: []byte("y")}}, 4)
	if err == nil {
		t.Fatal("a transaction with a record for a missing partition committed")
	}
	b, err := l.NewTxn(ctx, "workers", 0, "state")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := readState(t, l, "state", b.Fence("state")); got["k"] != "v1" {
		t.Fatalf("state after an aborted transaction: %q, want v1", got)
	}
	if off, _ := l.Committed(ctx, "workers"); off[0] != 3 {
		t.Fatalf("group offset after an aborted transaction: %d, want 3", off[0])
	}
}
