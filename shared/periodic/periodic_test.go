package periodic

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/poll"
)

func TestRunsRepeatedlyAndNeverOverlaps(t *testing.T) {
	var running, runs atomic.Int32
	var overlap atomic.Bool
	p := Start(time.Millisecond, func() {
		if running.Add(1) > 1 {
			overlap.Store(true)
		}
		time.Sleep(200 * time.Microsecond)
		runs.Add(1)
		running.Add(-1)
	})
	var kicks atomic.Int32
	for range 20 {
		p.Kick(func() {
			if running.Add(1) > 1 {
				overlap.Store(true)
			}
			kicks.Add(1)
			running.Add(-1)
		})
	}
	poll.Until(t, 10*time.Second, "five periodic runs and a kick", func() bool { return runs.Load() >= 5 && kicks.Load() >= 1 })
	p.Stop()
	if overlap.Load() {
		t.Fatal("two runs of one task overlapped")
	}
}

func TestStopWaitsForTheRunInProgress(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	var once sync.Once
	p := Start(time.Millisecond, func() {
		first := false
		once.Do(func() { first = true; close(started) })
		if first {
			<-release
		}
		finished.Store(true)
	})
	<-started
	stopped := make(chan struct{})
	go func() { p.Stop(); close(stopped) }()
	close(release)
	<-stopped
	if !finished.Load() {
		t.Fatal("Stop returned before the run in progress finished")
	}
	p.Stop() // a second Stop is harmless
}

func TestNoGoroutineBetweenRuns(t *testing.T) {
	before := runtime.NumGoroutine()
	tasks := make([]*Task, 1000)
	for i := range tasks {
		tasks[i] = Start(time.Hour, func() {})
	}
	if got := runtime.NumGoroutine() - before; got > 0 {
		t.Fatalf("1000 idle tasks hold %d goroutines, want 0", got)
	}
	for _, p := range tasks {
		p.Stop()
	}
}
