package intake

import (
	"fmt"
	"time"

	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

// MinTimeNs and MaxTimeNs bound the reading times the collector accepts:
// from the Unix epoch (a Pi-class gateway without a clock starts there)
// to window.MaxTimeNs (in 2116), the latest time window arithmetic handles
// without overflow. Stored times, block spans and query bounds all stay
// far from the int64 limits, so nothing wraps.
const (
	MinTimeNs = int64(0)
	MaxTimeNs = window.MaxTimeNs
)

// CheckTime returns an error naming reading i when its wall time is
// outside the representable range (monotonic times are only used by
// Redate, which ignores inconsistent ones). A batch carrying one is
// dead-lettered as a whole (reason time_range): its payload is kept, and no
// part of it is stored with a wrapped time.
func CheckTime(i int, r *wire.ReadingView) error {
	if r.WallNs < MinTimeNs || r.WallNs > MaxTimeNs {
		return fmt.Errorf("reading %d (seq %d): time %d ns is outside %s..%s", i, r.Seq, r.WallNs,
			time.Unix(0, MinTimeNs).UTC().Format(time.RFC3339), time.Unix(0, MaxTimeNs).UTC().Format(time.RFC3339))
	}
	return nil
}
