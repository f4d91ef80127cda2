package collector

import (
	"testing"
	"time"
)

// fakeToken is a paho.Token whose completion the test controls.
type fakeToken struct{ done chan struct{} }

func (t fakeToken) Wait() bool { <-t.done; return true }
func (t fakeToken) WaitTimeout(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.done:
		return true
	case <-timer.C:
		return false
	}
}
func (t fakeToken) Done() <-chan struct{} { return t.done }
func (t fakeToken) Error() error          { return nil }

// An ack the broker has confirmed counts as published even when the waiter
// is past its deadline (zero or negative time left); one not confirmed
// counts as failed once its time is up.
func TestConfirmedWithin(t *testing.T) {
	done := fakeToken{done: make(chan struct{})}
	close(done.done)
	for i := range 200 {
		for _, d := range []time.Duration{0, -time.Second, time.Millisecond} {
			if !confirmedWithin(done, d) {
				t.Fatalf("try %d: confirmed token with %v left counted as not confirmed", i, d)
			}
		}
	}
	pending := fakeToken{done: make(chan struct{})}
	for _, d := range []time.Duration{0, -time.Second, time.Millisecond} {
		if confirmedWithin(pending, d) {
			t.Fatalf("unconfirmed token with %v left counted as confirmed", d)
		}
	}
	go func() { time.Sleep(time.Millisecond); close(pending.done) }()
	if !confirmedWithin(pending, time.Minute) {
		t.Fatal("token confirmed while waiting counted as not confirmed")
	}
}
