package window

import "hash/maphash"

// devTable maps device names to indexes into Engine.devs. It replaces a
// map[string]int32 on the per-reading path: a slot is one word holding a
// hash tag and the index, so a lookup touches one compact slot array
// instead of a map group with its string headers, and the name is compared
// against the device the caller is about to use anyway.
type devTable struct {
	seed  maphash.Seed
	slots []uint64 // 0: empty; otherwise tag<<32 | index+1
	n     int
}

func newDevTable() devTable {
	return devTable{seed: maphash.MakeSeed(), slots: make([]uint64, 64)}
}

func tagOf(h uint64) uint64 { return h >> 32 }

// find returns the index of name in devs, or -1.
func (t *devTable) find(name string, devs []device) int32 {
	h := maphash.String(t.seed, name)
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return -1
		}
		if s>>32 == tagOf(h) {
			if di := int32(uint32(s)) - 1; devs[di].name == name {
				return di
			}
		}
	}
}

// insert records that devs[di] is named name; name must not be present.
// The table stays at most half full so probe runs stay short.
func (t *devTable) insert(name string, di int32, devs []device) {
	if 2*(t.n+1) > len(t.slots) {
		t.slots = make([]uint64, 2*len(t.slots))
		for i := range devs[:di] {
			t.place(devs[i].name, int32(i))
		}
	}
	t.place(name, di)
	t.n++
}

func (t *devTable) place(name string, di int32) {
	h := maphash.String(t.seed, name)
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = tagOf(h)<<32 | uint64(uint32(di+1))
}
