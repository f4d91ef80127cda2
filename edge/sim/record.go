package sim

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/gridedge/gridedge/shared/wire"
)

// The recording format: the line "gridedge-sim-record-v1\n", the site
// (uvarint length, bytes), then frames of uvarint length + one wire.Batch
// (device, boot, sequence epoch and readings with their sequence numbers and
// true times, in each device's generation order).
const recordMagic = "gridedge-sim-record-v1\n"

// maxRecordFrame bounds one frame; a larger length is corruption.
const maxRecordFrame = 16 << 20

// recordFlushAt is how many readings a meter gathers before it writes them
// as one frame.
const recordFlushAt = 32

// Recorder writes generated readings in the recording format. It is safe
// for concurrent use; the first write error is kept and returned by Flush.
type Recorder struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error
	n   uint64
}

// NewRecorder writes the header for site to w.
func NewRecorder(w io.Writer, site string) *Recorder {
	r := &Recorder{w: bufio.NewWriterSize(w, 1<<20)}
	_, r.err = r.w.WriteString(recordMagic)
	if r.err == nil {
		r.err = writeFrame(r.w, []byte(site))
	}
	return r
}

func writeFrame(w *bufio.Writer, p []byte) error {
	var head [binary.MaxVarintLen64]byte
	if _, err := w.Write(head[:binary.PutUvarint(head[:], uint64(len(p)))]); err != nil {
		return err
	}
	_, err := w.Write(p)
	return err
}

// Write records one batch.
func (r *Recorder) Write(b *wire.Batch) {
	p, err := proto.Marshal(b)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	if err != nil {
		r.err = err
		return
	}
	r.err = writeFrame(r.w, p)
	r.n += uint64(len(b.Readings))
}

// Readings is the number of readings recorded.
func (r *Recorder) Readings() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Flush writes what is buffered and returns the first error seen.
func (r *Recorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = r.w.Flush()
	}
	return r.err
}

// ReadRecording calls fn with the site and each batch of a recording, in
// file order. A truncated or corrupt file is an error naming the frame.
func ReadRecording(r io.Reader, fn func(site string, b *wire.Batch) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
	magic := make([]byte, len(recordMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != recordMagic {
		return errors.New("recording: not a gridedge-sim recording (bad header)")
	}
	var buf []byte
	frame := func() ([]byte, error) {
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, err
		}
		if n > maxRecordFrame {
			return nil, fmt.Errorf("frame of %d bytes", n)
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, fmt.Errorf("truncated: %w", err)
		}
		return buf, nil
	}
	site, err := frame()
	if err != nil {
		return fmt.Errorf("recording: site: %w", err)
	}
	s := string(site)
	for i := 1; ; i++ {
		p, err := frame()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("recording: frame %d: %w", i, err)
		}
		var b wire.Batch
		if err := proto.Unmarshal(p, &b); err != nil {
			return fmt.Errorf("recording: frame %d: %w", i, err)
		}
		if err := wire.ValidateBatch(&b); err != nil {
			return fmt.Errorf("recording: frame %d: %w", i, err)
		}
		if err := fn(s, &b); err != nil {
			return err
		}
	}
}

// meterRecord gathers one meter's readings into frames.
type meterRecord struct {
	mu    sync.Mutex
	batch *wire.Batch
}

func (m *meterRecord) add(rec *Recorder, device, bootID string, epoch uint64, r *wire.Reading) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.batch != nil && (m.batch.BootId != bootID || m.batch.SeqEpoch != epoch) {
		rec.Write(m.batch)
		m.batch = nil
	}
	if m.batch == nil {
		m.batch = &wire.Batch{DeviceId: device, BootId: bootID, SeqEpoch: epoch}
	}
	m.batch.Readings = append(m.batch.Readings, r)
	if len(m.batch.Readings) >= recordFlushAt {
		rec.Write(m.batch)
		m.batch = nil
	}
}

func (m *meterRecord) flush(rec *Recorder) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.batch != nil {
		rec.Write(m.batch)
		m.batch = nil
	}
}
