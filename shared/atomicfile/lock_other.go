//go:build !unix

package atomicfile

// lockFile is a no-op where advisory locks are not available: concurrent
// commands may then lose each other's changes.
func lockFile(string) (func(), error) { return func() {}, nil }
