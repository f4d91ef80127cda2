package poll

import (
	"testing"
	"time"
)

const (
	firstInterval = time.Millisecond
	maxInterval   = 50 * time.Millisecond
)

// Until calls cond until it returns true. If it has not within d, Until
// fails t with "timed out after d waiting for what".
func Until(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	For(t, d, what, func() (struct{}, error) { return struct{}{}, nil }, func(struct{}) bool { return cond() })
}

// For calls get until ok accepts its value (get's error counts as not
// yet) and returns that value. If that has not happened within d, For fails
// t naming what and the last value and error get returned.
func For[T any](t testing.TB, d time.Duration, what string, get func() (T, error), ok func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(d)
	wait := firstInterval
	for {
		v, err := get()
		if err == nil && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("timed out after %v waiting for %s: last error: %v", d, what, err)
				return v
			}
			t.Fatalf("timed out after %v waiting for %s: last value: %+v", d, what, v)
			return v
		}
		time.Sleep(wait)
		wait = min(2*wait, maxInterval)
	}
}
