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
	rd := NewRedater(wire.BatchHeader{BootID: b.BootId, SentBootID: b.SentBootId, SentMonoNs: b.SentMonoNs}, received, transit)
	if !rd.Active() {
		return 0
	}
	n := 0
	for _, r := range b.Readings {
		if rd.Apply(r.TimeQuality, r.MonoNs, &r.WallNs, &r.TimeErrorNs) {
			n++
		}
	}
	return n
}

// Redater applies Redate's rule to one batch's readings one at a time, for
// callers that scan a batch (wire.ScanBatch) instead of decoding it.
type Redater struct {
	active         bool
	recv, sentMono int64
	bound          int64
}

// NewRedater prepares the rule for a batch with header h received at
// received.
func NewRedater(h wire.BatchHeader, received time.Time, transit time.Duration) Redater {
	return Redater{
		active:   h.BootID != "" && h.BootID == h.SentBootID && h.SentMonoNs > 0,
		recv:     received.UnixNano(),
		sentMono: h.SentMonoNs,
		bound:    int64(transit),
	}
}

// Active reports whether the batch can have readings to re-date at all.
func (rd Redater) Active() bool { return rd.active }

// Apply re-dates one reading in place and reports whether it did.
func (rd Redater) Apply(q wire.TimeQuality, monoNs int64, wallNs, errNs *int64) bool {
	if !rd.active || q != wire.TimeQuality_TIME_QUALITY_ESTIMATED || monoNs > rd.sentMono || monoNs < 0 {
		return false
	}
	if *errNs > 0 && *errNs <= rd.bound {
		return false // the agent's own bound is already as good
	}
	wall := rd.recv - (rd.sentMono - monoNs)
	if wall < 0 {
		return false // would predate the epoch: the inputs are inconsistent
	}
	*wallNs, *errNs = wall, rd.bound
	return true
}
