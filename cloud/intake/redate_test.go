package intake

import (
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/wire"
)

// A boot that never synced stamps 1970 times; the collector dates its
// readings from the receive time when the batch was sent in the same boot
// (docs/time.md's example: received 12:00:10.300, sent at mono 7 200 s, a
// reading at mono 7 140 s was taken at about 11:59:10.300).
var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func TestNeverSyncedBootIsDatedFromReceiveTime(t *testing.T) {
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
	redated := Redate(b, received, DefaultTransitBound)
	// A batch of an earlier boot sent after a reboot: its monotonic times
	// mean nothing now, kept as stamped.
	old := &wire.Batch{SchemaVersion: wire.SchemaVersion, DeviceId: "pi", SeqEpoch: 1, BootId: "boot-1",
		SentBootId: "boot-2", SentMonoNs: int64(7200 * time.Second), Readings: []*wire.Reading{estimated(6, 9000*time.Second, unbounded)}}
	redated += Redate(old, received, DefaultTransitBound)
	got := map[uint64]*wire.Reading{}
	for _, r := range append(b.Readings, old.Readings...) {
		got[r.Seq] = r
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
		if r.WallNs != w.time.UnixNano() || r.TimeErrorNs != w.errNs || r.TimeQuality != q {
			t.Errorf("seq %d: time %v error %d quality %v; want %v, %d, %v", seq, time.Unix(0, r.WallNs).UTC(), r.TimeErrorNs, r.TimeQuality, w.time.UTC(), w.errNs, q)
		}
	}
	if redated != 2 {
		t.Fatalf("redated %d readings, want 2", redated)
	}
}
