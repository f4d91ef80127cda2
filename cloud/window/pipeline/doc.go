// Package pipeline runs a window engine under the exactly-once commit
// protocol: readings come from a durable, offset-ordered log; results, the
// late stream and the engine checkpoint go to a sink in one atomic commit;
// on start the last checkpoint is restored and the log replayed after its
// AppliedThrough offset. A crash at any point loses nothing and counts
// nothing twice: what was not committed is recomputed identically.
//
// The collector implements Log and Sink on its store (one transaction per
// Commit) and calls Apply for every deduplicated batch it has stored.
package pipeline
