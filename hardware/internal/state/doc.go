// Package state keeps a driver's small state (an energy counter) in a file
// that survives power loss: a save either fully replaces the previous
// content or leaves it untouched, never a torn file.
package state
