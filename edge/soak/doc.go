// Package soak drives the agent's real buffer (edge/buffer, with the options
// the agent ships) through simulated days of sampling, uplink outages and
// end-to-end acks as fast as the machine allows, and samples what the store
// costs on the way: bytes on disk, open files, mapped address space, Go heap
// and resident memory.
//
// It exists to prove, before anyone claims it, that Badger with the shipped
// options keeps working on 32-bit ARM (where a 3 GB address space is all
// there is and Badger's server defaults fail to mmap) over a week of backlog
// growth and drain. Run drives one soak and returns a Report; the package's
// tests assert the outcomes (every reading read exactly once, in order,
// deleted after its ack, nothing left behind, disk, files and mappings
// within stated bounds). docs/soak.md has the commands and measured numbers.
package soak
