package soak

import (
	"testing"

	"github.com/dgraph-io/ristretto/v2/z"
)

// tableAllocatorOverlaps reports whether ristretto's z.Allocator (which
// Badger's table builder takes its block buffers from) hands out memory it
// already handed out once it grows past its first buffer. In ristretto
// v2.2.0 (and v2.4.2) Allocate stores the next position as
// uint64((bufIdx+1)<<32): the shift happens in int, which is 0 on 32-bit
// platforms, so the allocator starts again at offset 0 of its first buffer
// and later blocks of an SST overwrite earlier ones. Badger then writes
// corrupt tables: reads skip them silently and compaction drops their keys.
func tableAllocatorOverlaps() bool {
	a := z.NewAllocator(1024, "soak-probe")
	defer a.Release()
	first := a.Allocate(1000)
	for i := range first {
		first[i] = 0xA5
	}
	second := a.Allocate(1000) // past the first buffer: the allocator grows
	for i := range second {
		second[i] = 0x5A
	}
	return first[0] != 0xA5
}

// On 64-bit platforms the allocator is sound; the probe must say so (a
// probe that always reported overlap would silently skip the soak).
func TestTableAllocatorProbe(t *testing.T) {
	got := tableAllocatorOverlaps()
	if addressBits == 64 && got {
		t.Fatal("probe reports overlapping allocations on a 64-bit platform")
	}
	t.Logf("%d-bit: table allocator reuses memory it handed out: %v", addressBits, got)
}
