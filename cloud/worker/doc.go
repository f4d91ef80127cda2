// Package worker runs one partition of the readings log: it reads the
// partition's records in offset order, deduplicates readings on (device,
// seq_epoch, seq) with per-device range sets, feeds new readings to the
// partition's window engine and to raw-reading blocks, and commits what it
// produced — engine deltas of the devices that changed, range sets, blocks,
// results, the late stream, device counters and statuses — together with
// its next input offset in one synced store batch. After a crash it
// restores that state and re-reads the log from the stored offset, so every
// reading is stored and windowed exactly once.
//
// A worker writes nothing while its partition receives nothing and no
// window changes (Stats.Commits stays put).
package worker
