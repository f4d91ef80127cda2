package buffer

import (
	"errors"
	"fmt"
	"strconv"
)

// Backend names the storage engine under the buffer.
type Backend string

const (
	// BackendAuto picks the engine shipped for the platform: bolt on 32-bit
	// platforms, Badger on 64-bit ones.
	BackendAuto Backend = "auto"
	// BackendBadger is the Badger v4 LSM store (64-bit platforms).
	BackendBadger Backend = "badger"
	// BackendBolt is the bbolt B+tree store (any platform; shipped on 32-bit).
	BackendBolt Backend = "bolt"
)

// ErrBadgerOn32Bit is returned (wrapped) by Open when Badger is asked for on
// a 32-bit platform.
var ErrBadgerOn32Bit = errors.New("buffer: the badger backend can lose data on 32-bit platforms " +
	"(ristretto's z.Allocator overflows a 32-bit int and Badger can write corrupt tables; see docs/soak.md); " +
	"use backend \"auto\" or \"bolt\"")

// ParseBackend checks a configured backend name; "" means BackendAuto.
func ParseBackend(s string) (Backend, error) {
	switch b := Backend(s); b {
	case "":
		return BackendAuto, nil
	case BackendAuto, BackendBadger, BackendBolt:
		return b, nil
	}
	return "", fmt.Errorf("buffer: unknown backend %q (want auto, badger or bolt)", s)
}

// is32Bit reports whether ints (and pointers) are 32 bits wide: armv6/armv7,
// 386, mips.
const is32Bit = strconv.IntSize == 32

// resolve turns a configured backend into the one to open on this platform.
// forceBadger lets a test open Badger on 32-bit to show its data loss.
func resolve(b Backend, forceBadger bool) (Backend, error) {
	b, err := ParseBackend(string(b))
	if err != nil {
		return "", err
	}
	switch {
	case b == BackendAuto && is32Bit:
		return BackendBolt, nil
	case b == BackendAuto:
		return BackendBadger, nil
	case b == BackendBadger && is32Bit && !forceBadger:
		return "", ErrBadgerOn32Bit
	}
	return b, nil
}

// Resolve reports which backend Open would use for b on this platform, or
// why it would refuse.
func Resolve(b Backend) (Backend, error) { return resolve(b, false) }

// kv is one key and value to store.
type kv struct {
	key, val []byte
}

// errStopScan ends a scan early without an error.
var errStopScan = errors.New("stop scan")

// store is the ordered byte-key storage under a Buffer. Everything the
// buffer means by a reading (sequence numbers, quota, thinning, dropping,
// durability, recovery) lives above it, once, for every engine.
//
// Implementations return an error wrapping ErrClosed after close.
type store interface {
	// apply stores puts and removes deletes in one atomic batch. Callers
	// keep batches below maxTxnEntries.
	apply(puts []kv, deletes [][]byte) error
	// scan calls fn with each key >= from in ascending order, at most limit
	// times. k and v are valid only during the call. fn returning
	// errStopScan ends the scan without an error.
	scan(from []byte, limit int, fn func(k, v []byte) error) error
	// sync makes everything applied so far durable.
	sync() error
	// diskBytes is the space the store's files use.
	diskBytes() int64
	// maintain reclaims space; run every maintenance interval.
	maintain()
	// liveShare is the fraction of the quota the live-data estimate may
	// use; the rest is headroom for the engine's own overhead.
	liveShare() float64
	close() error
}
