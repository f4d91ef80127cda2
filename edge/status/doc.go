// Package status is the agent's local view of itself: a Snapshot the
// running agent writes to state_dir/status.json every few seconds, which
// `gridedge-agent status` reads and prints (the agent's Badger buffer is
// locked while it runs, so the file is how a second process learns buffer
// depth, oldest unsent reading, clock quality and per-channel errors), and a
// Prometheus collector exposing the same numbers on /metrics.
package status
