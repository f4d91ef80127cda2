package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/gridedge/gridedge/cloud/readlog"
)

// reader reads one partition. It holds one open file, the segment it is in.
type reader struct {
	p    *partition
	next int64 // offset of the next record to return
	seg  *segment
	f    *os.File
	sc   scanner
	recs []readlog.Record
	done bool
}

// Open returns a reader of partition p positioned at from. It fails with a
// *readlog.TrimmedError (errors.Is readlog.ErrTrimmed) when from is below the
// partition's first stored offset, and with an error when from is beyond its
// end. A reader holds one open file.
func (l *Log) Open(p int, from int64) (readlog.Reader, error) {
	pt, err := l.partition(p)
	if err != nil {
		return nil, err
	}
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.closed {
		return nil, readlog.ErrClosed
	}
	if start := pt.segs[0].base; from < start {
		return nil, &readlog.TrimmedError{Partition: p, Requested: from, Available: start}
	}
	if from > pt.next {
		return nil, fmt.Errorf("readlog/local: partition %d: offset %d beyond the end %d", p, from, pt.next)
	}
	i := sort.Search(len(pt.segs), func(i int) bool { return pt.segs[i].base > from }) - 1
	seg := pt.segs[i]
	// Opened under the lock: the trimmer removes a segment from the list
	// before it unlinks the file.
	f, err := os.Open(seg.path)
	if err != nil {
		return nil, fmt.Errorf("readlog/local: %w", err)
	}
	r := &reader{p: pt, next: from, seg: seg, f: f,
		sc: scanner{buf: make([]byte, l.o.readBuffer), max: l.o.maxRecordBytes + frameHeaderLen}}
	r.sc.reset(seg.seek(from))
	return r, nil
}

// Fetch returns the next durable records; see readlog.Reader. When records
// the reader has not read yet were deleted by retention, it returns a
// *readlog.TrimmedError: re-open at its Available offset. A record that
// fails its checksum gives an error wrapping ErrCorrupt.
func (r *reader) Fetch(ctx context.Context, max int) ([]readlog.Record, error) {
	if r.done {
		return nil, readlog.ErrClosed
	}
	if max <= 0 {
		return nil, fmt.Errorf("readlog/local: Fetch of %d records", max)
	}
	p := r.p
	r.recs = r.recs[:0]
	for {
		durable, limit, nextSeg, err := r.wait(ctx)
		if err != nil {
			return nil, err
		}
		for len(r.recs) < max && r.next < durable {
			fr, err := decodeFrame(r.sc.buf[r.sc.r:r.sc.w], p.crc, p.o.maxRecordBytes+bodyFixedLen)
			if errors.Is(err, errShort) {
				break
			}
			if err == nil && fr.offset > r.next {
				err = fmt.Errorf("%w: offset %d where %d was expected", ErrCorrupt, fr.offset, r.next)
			}
			if err != nil && len(r.recs) > 0 {
				return r.recs, nil // the next Fetch reports the error
			}
			if err != nil {
				return nil, fmt.Errorf("readlog/local: partition %d, %s at %d: %w", p.id, r.seg.path, r.sc.pos(), err)
			}
			r.sc.r += fr.size
			if fr.offset < r.next {
				continue // before the position Open asked for
			}
			r.recs = append(r.recs, readlog.Record{Partition: p.id, Offset: fr.offset, Key: fr.key, Value: fr.value,
				Time: timeOf(fr.unixNano)})
			r.next++
		}
		if len(r.recs) > 0 {
			return r.recs, nil
		}
		if r.sc.pos() >= limit {
			// This segment is read to its end: move to the next one.
			if err := r.advance(nextSeg); err != nil {
				return nil, err
			}
			continue
		}
		// Buffered bytes hold no whole frame: read more (the buffer grows
		// to the largest frame). The published size ends on a frame.
		n, err := r.sc.fill(r.f, limit)
		if err != nil {
			return nil, fmt.Errorf("readlog/local: partition %d: %w", p.id, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("readlog/local: partition %d, %s at %d: %w: frame cut by the end of the data",
				p.id, r.seg.path, r.sc.pos(), ErrCorrupt)
		}
	}
}

// wait blocks until a durable record at or after the reader's position
// exists, then returns the durable offset, the readable size of the
// reader's segment and the segment after it (nil if none).
func (r *reader) wait(ctx context.Context) (durable, limit int64, nextSeg *segment, err error) {
	p := r.p
	p.mu.Lock()
	for p.durable <= r.next {
		ch := p.notify
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, 0, nil, ctx.Err()
		case <-p.l.stop:
			return 0, 0, nil, readlog.ErrClosed
		}
		p.mu.Lock()
	}
	defer p.mu.Unlock()
	if i := sort.Search(len(p.segs), func(i int) bool { return p.segs[i].base > r.seg.base }); i < len(p.segs) {
		nextSeg = p.segs[i]
	}
	return p.durable, r.seg.size, nextSeg, nil
}

// advance moves the reader to the next segment.
func (r *reader) advance(next *segment) error {
	p := r.p
	if next == nil {
		return fmt.Errorf("readlog/local: partition %d: offset %d is durable but past the last segment", p.id, r.next)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if next.base > r.next || (len(p.segs) > 0 && p.segs[0].base > next.base) {
		return &readlog.TrimmedError{Partition: p.id, Requested: r.next, Available: p.segs[0].base}
	}
	f, err := os.Open(next.path)
	if err != nil {
		return fmt.Errorf("readlog/local: %w", err)
	}
	r.f.Close()
	r.f, r.seg = f, next
	r.sc.reset(r.seg.seek(r.next))
	return nil
}

// Close releases the reader's file.
func (r *reader) Close() error {
	if r.done {
		return nil
	}
	r.done = true
	return r.f.Close()
}

func timeOf(unixNano int64) time.Time { return time.Unix(0, unixNano) }
