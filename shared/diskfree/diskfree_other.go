//go:build !unix

package diskfree

import "math"

// Available reports unlimited space where the platform cannot tell.
func Available(string) (int64, error) { return math.MaxInt64, nil }
