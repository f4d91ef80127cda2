package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"

	"github.com/gridedge/gridedge/shared/wire"
)

// Key layout. Device ids and channel names never contain 0x00 (the wire
// validation forbids it for channels; device ids are [A-Za-z0-9._-]), so 0x00
// separates variable-length parts and keeps prefix scans exact.
//
//	r dev 0 chan 0 qty(4) time(8) epoch(8) seq(8)   reading
//	d dev 0 epoch(8) seq(8)                         dedup index
//	i dev                                           device info (JSON)
//	s dev                                           latest status (JSON)
//	w dev 0 chan 0 qty(4) size(8) start(8)          window result
//	o dev 0 chan 0 qty(4) size(8) start(8)          index of windows still open
//	x received(8) id(8)                             dead letter (JSON)
//	c dev 0 epoch(8)                                contiguous_through of the epoch (8)
//	l offset(8)                                     ingest log: one deduplicated reading
//	R pipe 0 dev 0 chan 0 qty(4) start(8)           engine result, highest revision (JSON)
//	H pipe 0 dev 0 chan 0 qty(4) start(8) rev(4)    engine result, every revision (JSON)
//	L dev 0 time(8) epoch(8) seq(8) pipe            late reading (JSON)
//	K                                               engine checkpoint and its configuration id
const (
	prefixLog         = 'l'
	prefixResult      = 'R'
	prefixHistory     = 'H'
	prefixLate        = 'L'
	prefixEngineState = 'K'

	prefixReading    = 'r'
	prefixDedup      = 'd'
	prefixDevice     = 'i'
	prefixStatus     = 's'
	prefixWindow     = 'w'
	prefixOpenWindow = 'o'
	prefixDeadLetter = 'x'
	prefixContiguous = 'c'
)

// orderedTime maps signed nanoseconds onto unsigned values that sort in time
// order as big-endian bytes, including times before 1970 (unsynced clocks).
func orderedTime(ns int64) uint64 { return uint64(ns) ^ (1 << 63) }

func timeFromOrdered(u uint64) int64 { return int64(u ^ (1 << 63)) }

func deviceKey(prefix byte, device string) []byte {
	k := make([]byte, 0, 1+len(device))
	k = append(k, prefix)
	return append(k, device...)
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

func readingKey(device, channel string, q wire.Quantity, wallNs int64, epoch, seq uint64) []byte {
	k := seriesPrefix(prefixReading, device, channel, q)
	k = binary.BigEndian.AppendUint64(k, orderedTime(wallNs))
	k = binary.BigEndian.AppendUint64(k, epoch)
	return binary.BigEndian.AppendUint64(k, seq)
}

func dedupKey(device string, epoch, seq uint64) []byte {
	k := make([]byte, 0, 1+len(device)+1+16)
	k = append(k, prefixDedup)
	k = append(k, device...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, epoch)
	return binary.BigEndian.AppendUint64(k, seq)
}

// windowID identifies one window of one series.
type windowID struct {
	Device   string
	Channel  string
	Quantity wire.Quantity
	Size     time.Duration
	StartNs  int64
}

func (id windowID) key(prefix byte) []byte {
	k := seriesPrefix(prefix, id.Device, id.Channel, id.Quantity)
	k = binary.BigEndian.AppendUint64(k, uint64(id.Size))
	return binary.BigEndian.AppendUint64(k, orderedTime(id.StartNs))
}

var errBadKey = errors.New("store: malformed key")

// parseWindowKey is the inverse of windowID.key for either window prefix.
func parseWindowKey(k []byte) (windowID, error) {
	if len(k) < 1 {
		return windowID{}, errBadKey
	}
	rest := k[1:]
	dev, rest, ok := bytes.Cut(rest, []byte{0})
	if !ok {
		return windowID{}, errBadKey
	}
	ch, rest, ok := bytes.Cut(rest, []byte{0})
	if !ok || len(rest) != 4+8+8 {
		return windowID{}, errBadKey
	}
	return windowID{
		Device:   string(dev),
		Channel:  string(ch),
		Quantity: wire.Quantity(binary.BigEndian.Uint32(rest[0:4])),
		Size:     time.Duration(binary.BigEndian.Uint64(rest[4:12])),
		StartNs:  timeFromOrdered(binary.BigEndian.Uint64(rest[12:20])),
	}, nil
}

func deadLetterKey(received time.Time, id uint64) []byte {
	k := make([]byte, 0, 17)
	k = append(k, prefixDeadLetter)
	k = binary.BigEndian.AppendUint64(k, orderedTime(received.UnixNano()))
	return binary.BigEndian.AppendUint64(k, id)
}

func contiguousKey(device string, epoch uint64) []byte {
	k := make([]byte, 0, 1+len(device)+1+8)
	k = append(k, prefixContiguous)
	k = append(k, device...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, epoch)
}
