package periodic

import (
	"sync"
	"sync/atomic"
	"time"
)

// Task is a function run every interval until Stop.
type Task struct {
	every time.Duration
	fn    func()

	mu      sync.Mutex // held while a run is in progress
	t       *time.Timer
	stopped bool
	kicked  atomic.Bool // a Kick run is pending
}

// Start runs fn every interval, the first run one interval from now. It
// panics if interval is not positive, as time.NewTicker does.
func Start(interval time.Duration, fn func()) *Task {
	if interval <= 0 {
		panic("periodic: non-positive interval")
	}
	p := &Task{every: interval, fn: fn}
	p.mu.Lock()
	p.t = time.AfterFunc(interval, p.tick)
	p.mu.Unlock()
	return p
}

func (p *Task) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.fn()
	p.t.Reset(p.every)
}

// Kick runs fn once, soon, on a goroutine of its own that lives only for
// that run, serialized with the periodic runs. It never blocks. Kicks
// made while one is pending are coalesced into it; a Kick after Stop does
// nothing.
func (p *Task) Kick(fn func()) {
	if !p.kicked.CompareAndSwap(false, true) {
		return
	}
	go func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.kicked.Store(false)
		if !p.stopped {
			fn()
		}
	}()
}

// Stop ends the task: it waits for a run in progress and no run starts
// afterwards. It may be called more than once.
func (p *Task) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	p.t.Stop()
}
