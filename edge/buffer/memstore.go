package buffer

import (
	"slices"
	"strings"
)

// memEntry is one key and value held in memory.
type memEntry struct {
	key string
	val []byte
}

// memTable is an ordered in-memory key-value table: a slice sorted by key.
// The buffer's workload is a queue (appends at the end, acked readings
// deleted from the front), which makes both cheap: an append is a push, a
// deleted prefix is a re-slice. It is not safe for concurrent use; its
// owner locks.
type memTable struct {
	entries []memEntry
	// bytes is the keys' and values' total length.
	bytes int64
}

// find returns the index of the first entry with key >= k and whether it
// equals k.
func (t *memTable) find(k string) (int, bool) {
	if n := len(t.entries); n == 0 || t.entries[n-1].key < k {
		return n, false
	}
	return slices.BinarySearchFunc(t.entries, k, func(e memEntry, k string) int { return strings.Compare(e.key, k) })
}

// put stores val under k; the table keeps val (callers must not modify it).
func (t *memTable) put(k string, val []byte) {
	i, found := t.find(k)
	if found {
		t.bytes += int64(len(val) - len(t.entries[i].val))
		t.entries[i].val = val
		return
	}
	t.bytes += int64(len(k) + len(val))
	if i == len(t.entries) {
		t.entries = append(t.entries, memEntry{key: k, val: val})
		return
	}
	t.entries = slices.Insert(t.entries, i, memEntry{key: k, val: val})
}

// remove deletes the given keys (missing ones are ignored) in one pass.
func (t *memTable) remove(keys [][]byte) {
	if len(keys) == 0 || len(t.entries) == 0 {
		return
	}
	doomed := make([]int, 0, len(keys))
	for _, k := range keys {
		if i, found := t.find(string(k)); found {
			doomed = append(doomed, i)
		}
	}
	if len(doomed) == 0 {
		return
	}
	slices.Sort(doomed)
	doomed = slices.Compact(doomed)
	for _, i := range doomed {
		t.bytes -= int64(len(t.entries[i].key) + len(t.entries[i].val))
	}
	if doomed[len(doomed)-1] == len(doomed)-1 {
		// The oldest entries (the usual ack): drop the prefix without
		// copying the rest.
		clear(t.entries[:len(doomed)])
		t.entries = t.entries[len(doomed):]
		if len(t.entries) == 0 {
			t.entries = nil
		}
		return
	}
	w, d := doomed[0], 0
	for r := doomed[0]; r < len(t.entries); r++ {
		if d < len(doomed) && doomed[d] == r {
			d++
			continue
		}
		t.entries[w] = t.entries[r]
		w++
	}
	clear(t.entries[w:])
	t.entries = t.entries[:w]
}

// scan calls fn with each entry whose key is >= from, at most limit times.
// fn returning errStopScan ends the scan without an error.
func (t *memTable) scan(from []byte, limit int, fn func(k, v []byte) error) error {
	i, _ := t.find(string(from))
	for n := 0; i < len(t.entries) && n < limit; i, n = i+1, n+1 {
		e := t.entries[i]
		if err := fn([]byte(e.key), e.val); err != nil {
			if err == errStopScan {
				return nil
			}
			return err
		}
	}
	return nil
}

// len is the number of entries.
func (t *memTable) len() int { return len(t.entries) }
