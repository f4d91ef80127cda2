package local

import (
	"errors"
	"fmt"
	"os"
)

// batch is the group of records one write and one fsync make durable.
type batch struct {
	buf   []byte               // encoded frames, back to back
	dones []func(int64, error) // one per record, in offset order
	first int64                // offset of the first record
	rolls []roll               // where a new segment starts
	bytes int64                // in-flight budget held
}

// roll says that the frame at buf[at:] starts a new segment with base offset
// base.
type roll struct {
	at   int
	base int64
}

func (b *batch) empty() bool { return len(b.dones) == 0 && len(b.rolls) == 0 }

func (b *batch) reset(first int64) {
	b.buf = b.buf[:0]
	clear(b.dones) // drop the callbacks' closures
	b.dones = b.dones[:0]
	b.rolls = b.rolls[:0]
	b.first, b.bytes = first, 0
}

// runSyncer writes and fsyncs queued batches one after the other: records
// appended while a batch is being made durable form the next batch (group
// commit). On Close it drains what was queued and returns.
func (p *partition) runSyncer() {
	defer p.l.wg.Done()
	spare := &batch{}
	for {
		select {
		case <-p.kick:
		case <-p.l.stop:
		}
		for {
			p.mu.Lock()
			b := p.cur
			if b.empty() {
				p.mu.Unlock()
				break
			}
			spare.reset(p.next)
			p.cur = spare
			p.mu.Unlock()
			p.commit(b)
			spare = b
		}
		select {
		case <-p.l.stop:
			return
		default:
		}
	}
}

// segWrite is what a batch wrote to one segment: frames buf[from:to] at file
// position pos.
type segWrite struct {
	seg      *segment // nil for a segment created by this batch
	base     int64
	f        *os.File
	from, to int
	pos      int64
}

// segUpdate is what publish adds to a segment: index entries, its new
// size, its newest record's time.
type segUpdate struct {
	index    []indexEntry
	size     int64
	lastTime int64
}

// commit makes b durable and acknowledges it, or fails it (and everything
// queued after it) and rolls the files back to the last durable state.
func (p *partition) commit(b *batch) {
	writes, err := p.write(b)
	if err != nil {
		p.fail(b, writes, err)
		return
	}
	p.publish(b, writes)
}

// write appends b's frames to the active segment, starting new segments at
// its roll points, and fsyncs every file it touched (the directory too when
// it created a file). It returns the per-segment writes.
func (p *partition) write(b *batch) ([]segWrite, error) {
	p.mu.Lock()
	active := p.segs[len(p.segs)-1]
	p.mu.Unlock()
	writes := append(p.writes[:0], segWrite{seg: active, base: active.base, f: p.f, pos: p.fsize})
	defer func() { p.writes = writes }() // reused by the next batch
	for _, r := range b.rolls {
		w := &writes[len(writes)-1]
		w.to = r.at
		if err := p.writeChunk(w, b.buf); err != nil {
			return writes, err
		}
		if err := w.f.Sync(); err != nil {
			return writes, fmt.Errorf("fsync %s: %w", w.f.Name(), err)
		}
		f, err := createSegment(p.dir, r.base)
		if err != nil {
			return writes, err
		}
		writes = append(writes, segWrite{base: r.base, f: f, from: r.at, pos: segHeaderLen})
	}
	w := &writes[len(writes)-1]
	w.to = len(b.buf)
	if err := p.writeChunk(w, b.buf); err != nil {
		return writes, err
	}
	if err := w.f.Sync(); err != nil {
		return writes, fmt.Errorf("fsync %s: %w", w.f.Name(), err)
	}
	if len(writes) > 1 {
		if err := syncDir(p.dir); err != nil {
			return writes, err
		}
	}
	return writes, nil
}

// writeChunk writes buf[w.from:w.to] at the end of w's file in one call.
func (p *partition) writeChunk(w *segWrite, buf []byte) error {
	if w.from == w.to {
		return nil
	}
	if _, err := w.f.WriteAt(buf[w.from:w.to], w.pos); err != nil {
		return fmt.Errorf("write %s: %w", w.f.Name(), err)
	}
	return nil
}

// publish makes b visible to readers and calls its callbacks in order.
func (p *partition) publish(b *batch, writes []segWrite) {
	// Index entries and newest record time per segment, computed outside the
	// lock: only this goroutine changes a segment's index.
	for len(p.ups) < len(writes) {
		p.ups = append(p.ups, segUpdate{})
	}
	ups := p.ups[:len(writes)]
	for i, w := range writes {
		u := &ups[i]
		u.index, u.lastTime = u.index[:0], 0
		lastPos := int64(-1)
		if w.seg != nil && len(w.seg.index) > 0 {
			lastPos = w.seg.index[len(w.seg.index)-1].pos
		}
		for at := w.from; at < w.to; {
			off, ts, size := frameAt(b.buf[at:])
			pos := w.pos + int64(at-w.from)
			if lastPos < 0 || pos-lastPos >= p.o.indexInterval {
				u.index = append(u.index, indexEntry{offset: off, pos: pos})
				lastPos = pos
			}
			u.lastTime = ts
			at += size
		}
		u.size = w.pos + int64(w.to-w.from)
	}
	p.mu.Lock()
	for i, w := range writes {
		s := w.seg
		if s == nil {
			s = &segment{base: w.base, path: segmentPath(p.dir, w.base), lastTime: p.o.now().UnixNano()}
			p.segs = append(p.segs, s)
		}
		s.size = ups[i].size
		s.index = append(s.index, ups[i].index...)
		if ups[i].lastTime != 0 {
			s.lastTime = ups[i].lastTime
		}
	}
	p.durable = b.first + int64(len(b.dones))
	p.syncs++
	close(p.notify)
	p.notify = make(chan struct{})
	p.mu.Unlock()

	last := writes[len(writes)-1]
	if len(writes) > 1 {
		for _, w := range writes[:len(writes)-1] {
			w.f.Close()
		}
		p.f = last.f
		p.l.kickTrimmer()
	}
	p.fsize = last.pos + int64(last.to-last.from)
	p.l.budget.release(b.bytes)
	for i, done := range b.dones {
		done(b.first+int64(i), nil)
	}
}

// fail rolls the partition back to its last durable state after err, then
// fails b and every record queued after it, with offset -1 (their offsets
// are assigned again): offsets stay contiguous and the log keeps working once the cause
// (a full disk) is gone.
func (p *partition) fail(b *batch, writes []segWrite, err error) {
	var rbErr error
	for _, w := range writes[1:] {
		w.f.Close()
		rbErr = errors.Join(rbErr, os.Remove(w.f.Name()))
	}
	if len(writes) > 1 {
		rbErr = errors.Join(rbErr, syncDir(p.dir))
	}
	orig := writes[0]
	rbErr = errors.Join(rbErr, orig.f.Truncate(orig.pos), orig.f.Sync())
	p.f, p.fsize = orig.f, orig.pos

	p.mu.Lock()
	queued := p.cur
	p.cur = &batch{first: b.first}
	p.next, p.tail = b.first, orig.pos
	if rbErr != nil {
		p.broken = fmt.Errorf("%w (rolling back: %v)", err, rbErr)
	}
	p.mu.Unlock()

	p.log.Error("readings log: append failed, records not stored", "records", len(b.dones)+len(queued.dones),
		"first_offset", b.first, "err", err, "rollback_err", rbErr)
	p.l.budget.release(b.bytes + queued.bytes)
	err = fmt.Errorf("readlog/local: partition %d: %w", p.id, err)
	for _, done := range b.dones {
		done(-1, err)
	}
	later := fmt.Errorf("readlog/local: partition %d: an earlier append failed: %w", p.id, err)
	for _, done := range queued.dones {
		done(-1, later)
	}
}
