package local

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// On-disk format. A segment file starts with segMagic; then frames follow
// back to back, each:
//
//	0  uint32 body length L (bytes from offset 8 to the frame's end)
//	4  uint32 CRC-32C (Castagnoli) of bytes 0..4 and of the body
//	8  int64  offset
//	16 int64  append time, Unix nanoseconds
//	24 uint32 key length K
//	28 key (K bytes), then the value (L-20-K bytes)
//
// All integers are little-endian.
const (
	segMagic       = "grdlog01"
	segHeaderLen   = int64(len(segMagic))
	frameHeaderLen = 28
	bodyFixedLen   = frameHeaderLen - 8
)

var (
	// ErrCorrupt is wrapped by the errors a reader returns when a stored
	// record fails its checksum or framing (media corruption).
	ErrCorrupt = errors.New("readlog/local: corrupt record")
	// ErrTooLarge is returned by Append for a record over the maximum size
	// (WithMaxRecordBytes).
	ErrTooLarge = errors.New("readlog/local: record too large")
	// errShort means the buffer ends inside a frame.
	errShort = errors.New("readlog/local: short frame")
)

// frameSize is the bytes a record with this key and value takes on disk.
func frameSize(key, value []byte) int { return frameHeaderLen + len(key) + len(value) }

// appendFrame appends the encoded record to dst.
func appendFrame(dst []byte, tab *crc32.Table, offset, unixNano int64, key, value []byte) []byte {
	start := len(dst)
	bodyLen := bodyFixedLen + len(key) + len(value)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(bodyLen))
	dst = append(dst, 0, 0, 0, 0) // CRC, filled below
	dst = binary.LittleEndian.AppendUint64(dst, uint64(offset))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(unixNano))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(key)))
	dst = append(dst, key...)
	dst = append(dst, value...)
	crc := crc32.Update(crc32.Update(0, tab, dst[start:start+4]), tab, dst[start+8:])
	binary.LittleEndian.PutUint32(dst[start+4:], crc)
	return dst
}

// frame is a decoded record; key and value alias the decoded buffer.
type frame struct {
	offset   int64
	unixNano int64
	key      []byte
	value    []byte
	size     int // bytes the frame occupies
}

// decodeFrame decodes the frame at the start of b. It returns errShort when
// b ends inside a frame whose header is plausible, and an error wrapping
// ErrCorrupt when the frame is invalid: a body outside [20, maxBody], a
// checksum mismatch or a key longer than the body.
func decodeFrame(b []byte, tab *crc32.Table, maxBody int) (frame, error) {
	if len(b) < 8 {
		return frame{}, errShort
	}
	bodyLen := binary.LittleEndian.Uint32(b)
	if bodyLen < bodyFixedLen || int64(bodyLen) > int64(maxBody) {
		return frame{}, fmt.Errorf("%w: body length %d", ErrCorrupt, bodyLen)
	}
	size := 8 + int(bodyLen)
	if len(b) < size {
		return frame{}, errShort
	}
	want := binary.LittleEndian.Uint32(b[4:])
	if got := crc32.Update(crc32.Update(0, tab, b[:4]), tab, b[8:size]); got != want {
		return frame{}, fmt.Errorf("%w: checksum %08x, stored %08x", ErrCorrupt, got, want)
	}
	keyLen := binary.LittleEndian.Uint32(b[24:])
	if int64(keyLen) > int64(bodyLen)-bodyFixedLen {
		return frame{}, fmt.Errorf("%w: key length %d in a body of %d", ErrCorrupt, keyLen, bodyLen)
	}
	k := frameHeaderLen + int(keyLen)
	return frame{
		offset:   int64(binary.LittleEndian.Uint64(b[8:])),
		unixNano: int64(binary.LittleEndian.Uint64(b[16:])),
		key:      b[frameHeaderLen:k:k],
		value:    b[k:size:size],
		size:     size,
	}, nil
}

// frameAt reads the offset and time of the (already validated) frame at the
// start of b, and its size.
func frameAt(b []byte) (offset, unixNano int64, size int) {
	return int64(binary.LittleEndian.Uint64(b[8:])), int64(binary.LittleEndian.Uint64(b[16:])),
		8 + int(binary.LittleEndian.Uint32(b))
}
