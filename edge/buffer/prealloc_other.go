//go:build !linux

package buffer

import "os"

// allocate is a no-op where fallocate is not available.
func allocate(*os.File, int64) error { return nil }
