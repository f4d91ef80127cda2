package store

import (
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

// TestBatchEachAndClasses: Each gives every key a worker commit sets, and
// KeyClass names what each holds; a copy made with Set reads back the same.
func TestBatchEachAndClasses(t *testing.T) {
	s := open(t, t.TempDir())
	b := s.NewBatch(3)
	b.SetOffset(42)
	b.PutDedup("dev", 1, []byte{1})
	b.PutBlock("dev", "mains", wire.Quantity_QUANTITY_ACTIVE_POWER, t0.UnixNano(), 1, 5, []byte{9})
	if err := b.PutDevice(&DeviceInfo{ID: "dev", ReadingsStored: 5}); err != nil {
		t.Fatal(err)
	}
	if err := b.PutStatus(Status{Device: "dev", Online: true}); err != nil {
		t.Fatal(err)
	}
	res := window.Result{Pipeline: "p", Key: window.Key{Device: "dev", Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER},
		Start: t0.UnixNano(), End: t0.Add(time.Minute).UnixNano(), Revision: 1, Count: 3}
	late := window.LateReading{Pipeline: "p", Reading: window.Reading{Device: "dev", Channel: "mains", TimeNs: t0.UnixNano(), Seq: 1}}
	if err := b.PutOutput(window.Output{Results: []window.Result{res}, Late: []window.LateReading{late}}); err != nil {
		t.Fatal(err)
	}
	if err := b.PutConflict(Conflict{Device: "dev", Received: t0}, 7, 0); err != nil {
		t.Fatal(err)
	}
	classes := map[Class]int{}
	copyTo := open(t, t.TempDir())
	cb := copyTo.NewBatch(3)
	if err := b.Each(func(k, v []byte) error {
		classes[KeyClass(k)]++
		return cb.Set(k, v)
	}); err != nil {
		t.Fatal(err)
	}
	want := map[Class]int{ClassState: 2, ClassBlock: 1, ClassDevice: 1, ClassStatus: 1, ClassResult: 1, ClassHistory: 1, ClassLate: 1, ClassConflict: 1}
	for c, n := range want {
		if classes[c] != n {
			t.Errorf("class %d: %d keys, want %d (all: %v)", c, classes[c], n, classes)
		}
	}
	if classes[ClassOther] != 0 {
		t.Errorf("%d keys of no class", classes[ClassOther])
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := cb.Commit(); err != nil {
		t.Fatal(err)
	}
	st, err := copyTo.LoadPartition(3, func(string, uint64, []byte) error { return nil })
	if err != nil || st.Next != 42 {
		t.Fatalf("copied partition state: next %d (%v), want 42", st.Next, err)
	}
	if d, ok, err := copyTo.Device("dev"); err != nil || !ok || d.ReadingsStored != 5 {
		t.Fatalf("copied device: %+v %v %v", d, ok, err)
	}
	if err := copyTo.NewBatch(0).Set([]byte("Mmeta"), nil); err == nil {
		t.Error("Set of a key of no class (the store's meta key): no error")
	}
	if err := copyTo.NewBatch(0).Set(nil, nil); err == nil {
		t.Error("Set of an empty key: no error")
	}
}

func TestCursorsAndResultsFromAFeed(t *testing.T) {
	s := open(t, t.TempDir())
	if at, err := s.Cursor("topic", 2); err != nil || at != 0 {
		t.Fatalf("cursor never set: %d %v, want 0", at, err)
	}
	r := WindowResult{Pipeline: "p", Device: "dev", Channel: "mains", Quantity: "active_power", Start: t0, End: t0.Add(time.Minute),
		Revision: 2, Count: 4, Values: map[string]float64{"mean": 2}}
	b := s.NewBatch(0)
	if err := b.PutWindowResult(r); err != nil {
		t.Fatal(err)
	}
	b.SetCursor("topic", 2, 17)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	// The next revision replaces it; both stay in the history.
	next := r
	next.Revision, next.Count = 3, 5
	b = s.NewBatch(0)
	if err := b.PutWindowResult(next); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if at, err := s.Cursor("topic", 2); err != nil || at != 17 {
		t.Fatalf("cursor: %d %v, want 17", at, err)
	}
	var latest, history []WindowResult
	collect := func(into *[]WindowResult) func(*WindowResult) error {
		return func(w *WindowResult) error { *into = append(*into, *w); return nil }
	}
	if err := s.Results(ResultQuery{Pipeline: "p", Device: "dev"}, collect(&latest)); err != nil {
		t.Fatal(err)
	}
	if err := s.Results(ResultQuery{Pipeline: "p", Device: "dev", History: true}, collect(&history)); err != nil {
		t.Fatal(err)
	}
	if len(latest) != 1 || latest[0].Revision != 3 || latest[0].Count != 5 || len(history) != 2 {
		t.Fatalf("latest %+v, history %d revisions; want revision 3 and 2 revisions", latest, len(history))
	}
	if err := s.NewBatch(0).PutWindowResult(WindowResult{Pipeline: "p", Device: "dev", Quantity: "no_such_quantity"}); err == nil {
		t.Fatal("a result of an unknown quantity: no error")
	}
}
