package publish

import (
	"testing"
	"time"
)

// The send loop sleeps until woken when nothing is in flight, and otherwise
// only until the earliest ack deadline: no periodic wake-up.
func TestSendLoopSleepsUntilItHasWork(t *testing.T) {
	p, err := New(Config{Site: site, DeviceID: device, URL: "tcp://127.0.0.1:1", AckTimeout: 30 * time.Second}, newBuffer(t), fakeClock{start: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	s := &sender{}
	if _, ok := p.nextDeadline(s); ok {
		t.Fatal("disconnected: the loop should sleep until the connection wakes it")
	}
	p.connected.Store(true)
	if d, ok := p.nextDeadline(s); ok {
		t.Fatalf("nothing in flight: deadline %v, want none", d)
	}
	now := time.Now()
	s.flights = []*flight{{sentAt: now.Add(-10 * time.Second), seqs: []uint64{2}}, {sentAt: now.Add(-20 * time.Second), seqs: []uint64{1}}}
	if d, ok := p.nextDeadline(s); !ok || d > 10*time.Second || d < 9*time.Second {
		t.Fatalf("deadline %v (%v), want the oldest batch's ack deadline, ~10s away", d, ok)
	}
	s.flights[1].sentAt = now.Add(-time.Minute) // overdue: a resend failed
	if d, ok := p.nextDeadline(s); !ok || d != time.Second {
		t.Fatalf("overdue: deadline %v (%v), want a retry in 1s", d, ok)
	}
	s.flights, s.split = nil, 100 // replaying a backlog
	if d, ok := p.nextDeadline(s); !ok || d != time.Second {
		t.Fatalf("backlog: deadline %v (%v), want the replay round of 1s", d, ok)
	}
}

// An idle loop is not a stuck one: its heartbeat is the present.
func TestIdleSendLoopIsNotStuck(t *testing.T) {
	p, err := New(Config{Site: site, DeviceID: device, URL: "tcp://127.0.0.1:1"}, newBuffer(t), fakeClock{start: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Heartbeat().IsZero() {
		t.Fatal("heartbeat before Run")
	}
	p.heartbeat.Store(time.Now().Add(-time.Hour).UnixNano())
	if age := time.Since(p.Heartbeat()); age < 59*time.Minute {
		t.Fatalf("busy loop's heartbeat %v old, want its last round", age)
	}
	p.idle.Store(true)
	if age := time.Since(p.Heartbeat()); age > time.Minute {
		t.Fatalf("idle loop's heartbeat %v old, want now", age)
	}
}
