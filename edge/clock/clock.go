package clock

import "github.com/gridedge/gridedge/shared/wire"

// Stamp is the time of one measurement as the agent records it.
type Stamp struct {
	// BootID identifies the kernel boot MonoNs counts from.
	BootID string
	// MonoNs is CLOCK_BOOTTIME in ns: never steps, counts suspend.
	MonoNs int64
	// WallNs is the best wall-clock time known when stamped, ns since the
	// Unix epoch.
	WallNs int64
	// Quality says how far WallNs can be trusted; ErrorNs bounds the error
	// for estimated times.
	Quality wire.TimeQuality
	ErrorNs int64
}

// Source stamps readings and re-stamps them once the clock has synced.
// Implementations are safe for concurrent use.
type Source interface {
	// Now stamps the present moment.
	Now() Stamp
	// Correct returns the best time now known for a stamp taken earlier
	// (possibly in an earlier boot). A stamp taken before sync in the
	// current boot becomes wall = mono + offset learned at sync with
	// quality corrected; a stamp that cannot be improved comes back
	// unchanged (estimated stays estimated, with its error bound).
	Correct(s Stamp) Stamp
	// Quality is the present clock quality (for status messages).
	Quality() wire.TimeQuality
}
