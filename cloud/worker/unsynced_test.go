package worker

import (
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/intake"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/shared/poll"
	"github.com/gridedge/gridedge/shared/wire"
)

// A device's clock is unsynced since its first status saying so; the time
// survives further unsynced statuses (also across a worker restart) and is
// cleared by a synced one.
func TestStatusKeepsWhenTheClockWentUnsynced(t *testing.T) {
	r := newRig(t, 0)
	send := func(q wire.TimeQuality, at time.Duration) {
		r.now.Store(t0.Add(at).UnixNano())
		p, _ := wire.EncodeStatus(&wire.Status{SchemaVersion: wire.SchemaVersion, DeviceId: "d", Online: true, ClockQuality: q})
		r.append(intake.KindStatus, "d", p)
	}
	stored := func(what string, received time.Duration) store.Status {
		return poll.For(t, 30*time.Second, what, func() (store.Status, error) {
			st, _, err := r.st.Status("d")
			return st, err
		}, func(st store.Status) bool { return st.Received.Equal(t0.Add(received)) })
	}
	send(wire.TimeQuality_TIME_QUALITY_ESTIMATED, 0)
	send(wire.TimeQuality_TIME_QUALITY_ESTIMATED, time.Minute) // possibly in the same commit
	if st := stored("second status", time.Minute); !st.UnsyncedSince.Equal(t0) {
		t.Fatalf("unsynced since %v, want %v", st.UnsyncedSince, t0)
	}
	r.stop()
	r.run()
	send(wire.TimeQuality_TIME_QUALITY_RTC, time.Hour)
	if st := stored("status after restart", time.Hour); !st.UnsyncedSince.Equal(t0) {
		t.Fatalf("after a restart unsynced since %v, want %v", st.UnsyncedSince, t0)
	}
	send(wire.TimeQuality_TIME_QUALITY_SYNCED, 2*time.Hour)
	if st := stored("synced status", 2*time.Hour); !st.UnsyncedSince.IsZero() {
		t.Fatalf("synced, yet unsynced since %v", st.UnsyncedSince)
	}
	send(wire.TimeQuality_TIME_QUALITY_ESTIMATED, 3*time.Hour)
	if st := stored("unsynced again", 3*time.Hour); !st.UnsyncedSince.Equal(t0.Add(3 * time.Hour)) {
		t.Fatalf("unsynced again since %v, want %v", st.UnsyncedSince, t0.Add(3*time.Hour))
	}
}
