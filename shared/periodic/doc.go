// Package periodic runs a function every interval from a runtime timer,
// without a goroutine of its own between runs: a process with thousands of
// periodic tasks (a simulator's meters, each with its buffer's maintenance
// and its status file) pays for a timer each, not for a parked goroutine
// and its stack each.
//
// Guarantees: runs of one Task never overlap (periodic runs and Kick runs
// are serialized); after Stop returns no run is in progress and none
// starts; the interval is measured from the end of one run to the start of
// the next, so a slow run delays the next instead of piling runs up.
package periodic
