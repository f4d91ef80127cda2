package mqttlite

import (
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Token is an operation's completion; it implements paho's mqtt.Token.
type Token struct {
	done chan struct{}
	once sync.Once
	err  error
}

var _ mqtt.Token = (*Token)(nil)

func newToken() *Token { return &Token{done: make(chan struct{})} }

func (t *Token) complete(err error) {
	t.once.Do(func() { t.err = err; close(t.done) })
}

// Wait blocks until the operation completes; it returns true.
func (t *Token) Wait() bool { <-t.done; return true }

// WaitTimeout waits at most d and reports whether the operation completed.
func (t *Token) WaitTimeout(d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-t.done:
		return true
	case <-tm.C:
		return false
	}
}

// Done is closed when the operation completes.
func (t *Token) Done() <-chan struct{} { return t.done }

// Error is the operation's error, once Done is closed.
func (t *Token) Error() error {
	select {
	case <-t.done:
		return t.err
	default:
		return nil
	}
}
