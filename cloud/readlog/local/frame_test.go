package local

import (
	"bytes"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

func FuzzDecodeFrame(f *testing.F) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	f.Add(appendFrame(nil, tab, 7, 1700000000e9, []byte("dev-1"), []byte("value")))
	f.Add(appendFrame(nil, tab, 0, 0, nil, nil))
	f.Add(appendFrame(appendFrame(nil, tab, 1, 2, []byte("k"), nil), tab, 2, 3, nil, []byte("v")))
	f.Add([]byte{})
	f.Add(make([]byte, frameHeaderLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFrame(b, tab, 1<<16)
		if err != nil {
			if !errors.Is(err, errShort) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if fr.size > len(b) || len(fr.key)+len(fr.value)+frameHeaderLen != fr.size {
			t.Fatalf("frame of %d bytes from %d: key %d value %d", fr.size, len(b), len(fr.key), len(fr.value))
		}
		if re := appendFrame(nil, tab, fr.offset, fr.unixNano, fr.key, fr.value); !bytes.Equal(re, b[:fr.size]) {
			t.Fatalf("re-encoding differs:\n%x\n%x", re, b[:fr.size])
		}
	})
}

// Any single flipped bit in a frame is caught (CRC-32C detects every
// single-bit error; a length that grows reads as a frame cut short).
func TestEverySingleBitFlipIsDetected(t *testing.T) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	good := appendFrame(nil, tab, 42, 1700000000e9, []byte("gw-b827eb3a4c12"), bytes.Repeat([]byte("r"), 300))
	for i := range len(good) * 8 {
		b := bytes.Clone(good)
		b[i/8] ^= 1 << (i % 8)
		if _, err := decodeFrame(b, tab, 1<<16); err == nil {
			t.Fatalf("flip of bit %d undetected", i)
		}
	}
}

// FuzzRecovery appends arbitrary bytes after valid records of the last
// segment: Open must succeed and keep every valid record.
func FuzzRecovery(f *testing.F) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	f.Add([]byte("garbage"))
	f.Add(appendFrame(nil, tab, 3, 5, nil, []byte("next record, valid")))
	f.Add(appendFrame(nil, tab, 9, 5, nil, []byte("wrong offset")))
	f.Fuzz(func(t *testing.T, tail []byte) {
		dir := t.TempDir()
		var seg []byte
		seg = append(seg, segMagic...)
		for i := range 3 {
			seg = appendFrame(seg, tab, int64(i), 1, []byte("k"), []byte("v"))
		}
		if err := os.MkdirAll(filepath.Join(dir, "0"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, metaFile), []byte(`{"format":1,"partitions":1}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(segmentPath(filepath.Join(dir, "0"), 0), append(seg, tail...), 0o600); err != nil {
			t.Fatal(err)
		}
		l := openLog(t, dir)
		n := end(l, 0)
		if n < 3 {
			t.Fatalf("valid records lost: end %d", n)
		}
		recs := readRange(t, l, 0, 0, n)
		for _, r := range recs[:3] {
			if r.key != "k" || r.value != "v" {
				t.Fatalf("record %d reads %q/%q", r.off, r.key, r.value)
			}
		}
		l.Close()
	})
}
