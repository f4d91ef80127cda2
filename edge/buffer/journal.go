package buffer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

// The shared store's file format (journal and snapshot alike): a magic
// line, then records, each
//
//	uvarint(len(payload)) | crc32c(payload) (4 bytes, big endian) | payload
//
// with payload = op (1 byte: 'p' put, 'd' delete) | uvarint(len(ns)) | ns |
// uvarint(len(key)) | key | value (the rest; puts only). A snapshot holds
// only puts. Replay stops at the first record that is short or fails its
// checksum: that is the tail a crash tore, and everything before it is
// intact.

// journalMagic opens every shared-store file.
const journalMagic = "gridedge-buffer-shared-v1\n"

const (
	opPut    = 'p'
	opDelete = 'd'
)

// maxJournalRecord bounds one record; a larger length prefix is corruption.
const maxJournalRecord = 16 << 20

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// journalEncoder appends records to a writer, reusing one scratch buffer.
type journalEncoder struct {
	w       *bufio.Writer
	scratch []byte
	// written counts the bytes handed to w.
	written int64
}

func (e *journalEncoder) record(op byte, ns string, key, val []byte) error {
	p := e.scratch[:0]
	p = append(p, op)
	p = binary.AppendUvarint(p, uint64(len(ns)))
	p = append(p, ns...)
	p = binary.AppendUvarint(p, uint64(len(key)))
	p = append(p, key...)
	p = append(p, val...)
	var head [binary.MaxVarintLen64 + 4]byte
	n := binary.PutUvarint(head[:], uint64(len(p)))
	binary.BigEndian.PutUint32(head[n:], crc32.Checksum(p, crc32c))
	e.scratch = p
	if _, err := e.w.Write(head[:n+4]); err != nil {
		return err
	}
	if _, err := e.w.Write(p); err != nil {
		return err
	}
	e.written += int64(n + 4 + len(p))
	return nil
}

// errTornRecord marks the end of the intact part of a file.
var errTornRecord = errors.New("torn record")

// replayJournal reads the records of r and calls fn for each intact one;
// key and val are fresh copies the callee may keep. It returns the length
// of the intact prefix (so a writer can cut a torn tail) and the number of
// bytes it could not use.
func replayJournal(r io.Reader, fn func(op byte, ns string, key, val []byte)) (intact int64, torn bool, err error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic := make([]byte, len(journalMagic))
	n, err := io.ReadFull(br, magic)
	if err != nil && strings.HasPrefix(journalMagic, string(magic[:n])) {
		// Empty, or the crash came while the magic line was written.
		return 0, n > 0, nil
	}
	if string(magic[:n]) != journalMagic {
		return 0, false, fmt.Errorf("not a shared buffer file (magic %q)", magic)
	}
	intact = int64(len(journalMagic))
	var buf []byte
	for {
		n, err := binary.ReadUvarint(br)
		if errors.Is(err, io.EOF) {
			return intact, false, nil
		}
		if err != nil || n > maxJournalRecord {
			return intact, true, nil
		}
		var sum [4]byte
		if _, err := io.ReadFull(br, sum[:]); err != nil {
			return intact, true, nil
		}
		buf = slicesGrow(buf, int(n))
		if _, err := io.ReadFull(br, buf); err != nil {
			return intact, true, nil
		}
		if crc32.Checksum(buf, crc32c) != binary.BigEndian.Uint32(sum[:]) {
			return intact, true, nil
		}
		op, ns, key, val, err := decodeRecord(buf)
		if err != nil {
			return intact, true, nil
		}
		fn(op, ns, key, val)
		intact += int64(uvarintLen(n) + 4 + int(n))
	}
}

func slicesGrow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

func uvarintLen(x uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], x)
}

func decodeRecord(p []byte) (op byte, ns string, key, val []byte, err error) {
	if len(p) < 1 {
		return 0, "", nil, nil, errTornRecord
	}
	op, p = p[0], p[1:]
	if op != opPut && op != opDelete {
		return 0, "", nil, nil, errTornRecord
	}
	field := func() ([]byte, error) {
		n, k := binary.Uvarint(p)
		if k <= 0 || uint64(len(p)-k) < n {
			return nil, errTornRecord
		}
		f := p[k : k+int(n)]
		p = p[k+int(n):]
		return f, nil
	}
	nsb, err := field()
	if err != nil {
		return 0, "", nil, nil, err
	}
	kb, err := field()
	if err != nil {
		return 0, "", nil, nil, err
	}
	if op == opDelete && len(p) > 0 {
		return 0, "", nil, nil, errTornRecord
	}
	key = append([]byte(nil), kb...)
	if op == opPut {
		val = append([]byte(nil), p...)
	}
	return op, string(nsb), key, val, nil
}
