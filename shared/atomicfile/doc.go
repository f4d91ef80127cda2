// Package atomicfile replaces small state files so that after a crash or a
// power cut the file holds either its old or its new content, never a torn
// mix: sequence-number state, persisted energy counters, addresses handed to
// other processes.
package atomicfile
