package store

import (
	"encoding/binary"
	"errors"

	"github.com/gridedge/gridedge/shared/wire"
)

// Key layout. Device ids and channel names never contain 0x00 (the wire
// validation forbids it for channels; device ids are [A-Za-z0-9._-]), so 0x00
// separates variable-length parts and keeps prefix scans exact.
//
//	M                                               store format and partition count
//	O part(2)                                       partition's next readings-log offset
//	K part(2)                                       partition's window-engine header
//	E part(2) dev                                   a device's window-engine state
//	D part(2) dev 0 epoch(8)                        a device's dedup range set of one epoch
//	i dev                                           device counters (JSON)
//	s dev                                           latest status (JSON)
//	b dev 0 chan 0 qty(4) time(8) epoch(8) seq(8)   raw readings block, keyed by its first reading
//	R pipe 0 dev 0 chan 0 qty(4) start(8)           result, highest revision (JSON)
//	H pipe 0 dev 0 chan 0 qty(4) start(8) rev(4)    result, every revision (JSON)
//	L dev 0 time(8) epoch(8) seq(8) pipe            late reading (JSON)
//	x received(8) id(8)                             dead letter (JSON)
//	c received(8) part(2) offset(8) index(4)        conflict: a resent identity with other content (JSON)
//	F part(2) seq(8)                                results feed entry: kind(1) commit time(8) JSON
//	f part(2)                                       results feed's next sequence
//	G sink 0 part(2)                                a sink's feed cursor (next sequence it needs)
const (
	prefixMeta        = 'M'
	prefixOffset      = 'O'
	prefixEngineHead  = 'K'
	prefixEngineDev   = 'E'
	prefixDedup       = 'D'
	prefixDevice      = 'i'
	prefixStatus      = 's'
	prefixBlock       = 'b'
	prefixResult      = 'R'
	prefixHistory     = 'H'
	prefixLate        = 'L'
	prefixDeadLetter  = 'x'
	prefixConflict    = 'c'
	prefixFeed        = 'F'
	prefixFeedNext    = 'f'
	prefixFeedCursor  = 'G'
	prefixPing        = '~'
	partitionKeyBytes = 2
)

var errBadKey = errors.New("store: malformed key")

// orderedTime maps signed nanoseconds onto unsigned values that sort in time
// order as big-endian bytes, including times before 1970 (unsynced clocks).
func orderedTime(ns int64) uint64 { return uint64(ns) ^ (1 << 63) }

func timeFromOrdered(u uint64) int64 { return int64(u ^ (1 << 63)) }

func deviceKey(prefix byte, device string) []byte {
	k := make([]byte, 0, 1+len(device))
	k = append(k, prefix)
	return append(k, device...)
}

func partitionKey(prefix byte, p int) []byte {
	return binary.BigEndian.AppendUint16([]byte{prefix}, uint16(p))
}

func partitionDeviceKey(prefix byte, p int, device string) []byte {
	return append(partitionKey(prefix, p), device...)
}

func dedupKey(p int, device string, epoch uint64) []byte {
	k := append(partitionDeviceKey(prefixDedup, p, device), 0)
	return binary.BigEndian.AppendUint64(k, epoch)
}

func seriesPrefix(prefix byte, device, channel string, q wire.Quantity) []byte {
	k := make([]byte, 0, 1+len(device)+1+len(channel)+1+4+24)
	k = append(k, prefix)
	k = append(k, device...)
	k = append(k, 0)
	k = append(k, channel...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uint32(q))
}

func blockKey(device, channel string, q wire.Quantity, firstNs int64, epoch, seq uint64) []byte {
	k := seriesPrefix(prefixBlock, device, channel, q)
	k = binary.BigEndian.AppendUint64(k, orderedTime(firstNs))
	k = binary.BigEndian.AppendUint64(k, epoch)
	return binary.BigEndian.AppendUint64(k, seq)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
