// Package poll is the one way tests wait for something to happen: poll a
// condition until it holds, failing the test with what was awaited (and the
// last state seen) when it has not within a deadline.
//
// The deadline only bounds a test that would otherwise hang; it is never
// the assertion. Polling starts at 1 ms and backs off to 50 ms, so a fast
// condition is seen at once and a slow one costs little CPU.
package poll
