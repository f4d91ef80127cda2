// Package disktest gives tests a small file system of their own to fill:
// the full-disk tests of the agent's buffer, the readings log and the
// collector use it.
package disktest
