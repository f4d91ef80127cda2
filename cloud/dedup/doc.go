// Package dedup keeps, per device and sequence epoch, the set of sequence
// numbers a worker has accepted, as sorted disjoint ranges. An agent numbers
// its readings 1, 2, 3, ... so a device that has sent millions of readings
// is usually one range: memory grows with the gaps, not with the readings.
//
// A Set is bounded: beyond MaxRanges ranges the two lowest ranges are merged
// (the gap between them is then taken as seen). Agents resend only what was
// not acknowledged, newest gaps first to be filled, so the oldest gap is the
// one least likely to be filled later; a reading landing in a closed gap is
// counted as a duplicate and reported by Add, never silently.
package dedup
