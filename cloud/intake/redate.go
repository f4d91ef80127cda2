package intake

import (
	"time"

	"github.com/gridedge/gridedge/shared/wire"
)

// DefaultTransitBound is the error bound given to readings dated from the
// collector's receive time when none is configured: a batch is built just
// before it is sent, so its transit is the network and broker delay, well
// under this unless the broker held it for an offline collector.
const DefaultTransitBound = 10 * time.Second

// Redate applies the collector's time rule for a boot whose clock never
// synced (docs/time.md): when a batch was sent during the boot its readings
// were taken in (boot_id == sent_boot_id), monotonic times are comparable,
// so an estimated reading's wall time is the receive time minus how long
// before the send it was taken, with the transit delay as error bound. It
// changes a reading only when that bound is tighter than the agent's, keeps
// quality estimated, and returns how many readings it re-dated.
//
// Readings of an earlier boot, readings claiming to be taken after the send
// and batches without send times are left as the agent stamped them:
// nothing relates their monotonic time to a known wall time.
func Redate(b *wire.Batch, received time.Time, transit time.Duration) int {
	if b.BootId == "" || b.BootId != b.SentBootId || b.SentMonoNs <= 0 {
		return 0
	}
	recv := received.UnixNano()
	bound := int64(transit)
	n := 0
	for _, r := range b.Readings {
		if r.TimeQuality != wire.TimeQuality_TIME_QUALITY_ESTIMATED || r.MonoNs > b.SentMonoNs || r.MonoNs < 0 {
			continue
		}
		if r.TimeErrorNs > 0 && r.TimeErrorNs <= bound {
			continue // the agent's own bound is already as good
		}
		wall := recv - (b.SentMonoNs - r.MonoNs)
		if wall < 0 {
			continue // would predate the epoch: the inputs are inconsistent
		}
		r.WallNs, r.TimeErrorNs = wall, bound
		n++
	}
	return n
}
