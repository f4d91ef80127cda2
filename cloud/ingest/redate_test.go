package ingest

import (
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/shared/topic"
	"github.com/gridedge/gridedge/shared/wire"
)

// A boot that never synced stamps 1970 times; the collector dates its
// readings from the receive time when the batch was sent in the same boot
// (docs/time.md's example: received 12:00:10.300, sent at mono 7 200 s, a
// reading at mono 7 140 s was taken at about 11:59:10.300).
func TestNeverSyncedBootIsDatedFromReceiveTime(t *testing.T) {
	in, st, reg := newIngester(t)
	received := time.Date(2026, 11, 23, 12, 0, 10, 300_000_000, time.UTC)
	estimated := func(seq uint64, mono time.Duration, errNs int64) *wire.Reading {
		return &wire.Reading{Seq: seq, Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: 1,
			WallNs: int64(mono), MonoNs: int64(mono), TimeQuality: wire.TimeQuality_TIME_QUALITY_ESTIMATED, TimeErrorNs: errNs}
	}
	unbounded := int64(1<<63 - 1)
	b := &wire.Batch{SchemaVersion: wire.SchemaVersion, DeviceId: "pi", SeqEpoch: 1, BootId: "boot-2",
		SentBootId: "boot-2", SentMonoNs: int64(7200 * time.Second), SentWallNs: int64(7200 * time.Second),
		SentTimeQuality: wire.TimeQuality_TIME_QUALITY_ESTIMATED,
		Readings: []*wire.Reading{
			estimated(1, 7140*time.Second, unbounded),
			estimated(2, 7141*time.Second, 0),
			estimated(3, 7300*time.Second, unbounded),          // after the send: inconsistent, kept
			estimated(4, 7150*time.Second, int64(time.Second)), // the agent's bound is better, kept
			{Seq: 5, Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: 1, WallNs: t0.UnixNano(),
				MonoNs: int64(7160 * time.Second), TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED, TimeErrorNs: 1000},
		}}
	payload, err := wire.EncodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.HandleData(topic.For("s", "pi", topic.Data), payload, received); err != nil {
		t.Fatal(err)
	}
	// A batch of an earlier boot sent after a reboot: its monotonic times
	// mean nothing now, kept as stamped.
	old := &wire.Batch{SchemaVersion: wire.SchemaVersion, DeviceId: "pi", SeqEpoch: 1, BootId: "boot-1",
		SentBootId: "boot-2", SentMonoNs: int64(7200 * time.Second), Readings: []*wire.Reading{estimated(6, 9000*time.Second, unbounded)}}
	if payload, err = wire.EncodeBatch(old); err != nil {
		t.Fatal(err)
	}
	if _, err := in.HandleData(topic.For("s", "pi", topic.Data), payload, received); err != nil {
		t.Fatal(err)
	}

	got := map[uint64]store.Reading{}
	if err := st.Readings("pi", "mains", wire.Quantity_QUANTITY_ACTIVE_POWER, time.Time{}, time.Time{}, func(r store.Reading) error {
		got[r.Seq] = r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[uint64]struct {
		time   time.Time
		errNs  int64
		synced bool
	}{
		1: {received.Add(-60 * time.Second), int64(DefaultTransitBound), false},
		2: {received.Add(-59 * time.Second), int64(DefaultTransitBound), false},
		3: {time.Unix(0, int64(7300*time.Second)), unbounded, false},
		4: {time.Unix(0, int64(7150*time.Second)), int64(time.Second), false},
		5: {t0, 1000, true},
		6: {time.Unix(0, int64(9000*time.Second)), unbounded, false},
	}
	if len(got) != len(want) {
		t.Fatalf("stored %d readings, want %d", len(got), len(want))
	}
	for seq, w := range want {
		r := got[seq]
		q := wire.TimeQuality_TIME_QUALITY_ESTIMATED
		if w.synced {
			q = wire.TimeQuality_TIME_QUALITY_SYNCED
		}
		if !r.Time.Equal(w.time) || r.TimeErrorNs != w.errNs || r.TimeQuality != q {
			t.Errorf("seq %d: time %v error %d quality %v; want %v, %d, %v", seq, r.Time, r.TimeErrorNs, r.TimeQuality, w.time.UTC(), w.errNs, q)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	redated := -1.0
	for _, mf := range mfs {
		if mf.GetName() == "gridedge_collector_readings_redated_total" {
			redated = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if redated != 2 {
		t.Fatalf("redated counter %v, want 2", redated)
	}
}
