package poll

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB that records Fatalf instead of stopping the
// calling test.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = format
	for _, a := range args {
		r.msg += " " + strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(toString(a), "\n", " "), "  ", " "))
	}
}

func toString(a any) string {
	switch v := a.(type) {
	case string:
		return v
	case error:
		return v.Error()
	case time.Duration:
		return v.String()
	}
	return ""
}

func TestUntilReturnsOnceTrue(t *testing.T) {
	var n atomic.Int32
	Until(t, time.Minute, "the third call", func() bool { return n.Add(1) == 3 })
	if n.Load() != 3 {
		t.Fatalf("cond called %d times, want 3", n.Load())
	}
}

func TestUntilFailsNamingWhat(t *testing.T) {
	r := &recorder{TB: t}
	Until(r, 20*time.Millisecond, "never", func() bool { return false })
	if !strings.Contains(r.msg, "never") {
		t.Fatalf("failure %q does not name what was awaited", r.msg)
	}
}

func TestForReturnsTheAcceptedValue(t *testing.T) {
	var n atomic.Int32
	v := For(t, time.Minute, "5", func() (int32, error) {
		x := n.Add(1)
		if x < 3 {
			return 0, errors.New("not yet")
		}
		return x, nil
	}, func(x int32) bool { return x >= 5 })
	if v != 5 {
		t.Fatalf("got %d, want 5", v)
	}
}

func TestForFailsWithTheLastError(t *testing.T) {
	r := &recorder{TB: t}
	For(r, 20*time.Millisecond, "a file", func() (int, error) { return 0, errors.New("no such file") }, func(int) bool { return true })
	if !strings.Contains(r.msg, "a file") || !strings.Contains(r.msg, "no such file") {
		t.Fatalf("failure %q lacks what or the last error", r.msg)
	}
}
