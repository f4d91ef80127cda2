// Package diskfree reports the free space of a file system, as both the
// agent's buffer and the collector use it to keep a reserve.
package diskfree
