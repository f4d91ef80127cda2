package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gridedge/gridedge/shared/atomicfile"
)

func (l *Log) kickTrimmer() {
	select {
	case l.trimKick <- struct{}{}:
	default:
	}
}

// runTrimmer deletes segments and saves committed offsets. It runs when
// kicked (a commit, a new segment) or when the next age deadline or commit
// save is due; an idle log with nothing due has no timer.
func (l *Log) runTrimmer() {
	defer l.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var lastSave time.Time
	for {
		now := l.o.now()
		due := l.trim(now)
		if l.commitsDirty() {
			if wait := l.o.commitInterval - now.Sub(lastSave); wait > 0 {
				due = earliest(due, now.Add(wait))
			} else {
				l.saveCommitted()
				lastSave = now
			}
		}
		if !due.IsZero() {
			timer.Reset(max(due.Sub(now), time.Millisecond))
		}
		select {
		case <-l.trimKick:
		case <-timer.C:
		case <-l.stop:
			timer.Stop()
			l.saveCommitted()
			return
		}
		timer.Stop()
	}
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// trim deletes every segment due for deletion, closes idle active segments
// past the age retention, and returns when the next segment becomes due by
// age (zero: none).
func (l *Log) trim(now time.Time) time.Time {
	var due time.Time
	for _, p := range l.parts {
		due = earliest(due, p.trim(now))
	}
	return due
}

func (p *partition) trim(now time.Time) time.Time {
	o := p.o
	cutoff := now.Add(-o.retentionAge).UnixNano()
	p.mu.Lock()
	minCommitted, gated := int64(-1), len(p.l.groups) > 0
	for g := range p.l.groups {
		if c := p.committed[g]; minCommitted < 0 || c < minCommitted {
			minCommitted = c
		}
	}
	var total int64
	for _, s := range p.segs {
		total += s.size
	}
	var del []*segment
	var lost int64
	for len(p.segs) > 1 {
		s, end := p.segs[0], p.segs[1].base
		consumed := gated && end <= minCommitted
		expired := o.retentionAge > 0 && s.lastTime <= cutoff
		over := o.retentionBytes > 0 && total > o.retentionBytes
		if !consumed && !expired && !over {
			break
		}
		if !consumed {
			from := s.base
			if gated {
				from = max(from, minCommitted)
			}
			lost += max(end-from, 0)
		}
		del = append(del, s)
		total -= s.size
		p.segs = p.segs[1:]
	}
	p.trimmed += lost
	var due time.Time
	if o.retentionAge > 0 {
		active := p.segs[len(p.segs)-1]
		if len(p.segs) > 1 {
			due = time.Unix(0, p.segs[0].lastTime).Add(o.retentionAge)
		} else if active.size > segHeaderLen {
			if active.lastTime <= cutoff {
				p.rollIdle()
			} else {
				due = time.Unix(0, active.lastTime).Add(o.retentionAge)
			}
		}
	}
	p.mu.Unlock()
	for _, s := range del {
		if err := os.Remove(s.path); err != nil {
			p.log.Error("readings log: deleting a segment", "segment", s.path, "err", err)
		}
	}
	if len(del) > 0 {
		p.log.Debug("readings log: segments deleted", "segments", len(del), "start", del[len(del)-1].base, "unconsumed_records", lost)
	}
	if lost > 0 {
		p.log.Warn("readings log: retention deleted records not every consumer group had committed",
			"records", lost, "retention_age", o.retentionAge, "retention_bytes", o.retentionBytes)
	}
	return due
}

// rollIdle closes the active segment, whose newest record is past the age
// retention, by queueing an empty batch that starts a new segment; the next
// trim deletes the old one. Called with p.mu held.
func (p *partition) rollIdle() {
	if p.closed || p.broken != nil || !p.cur.empty() || p.tail <= segHeaderLen {
		return
	}
	p.cur.rolls = append(p.cur.rolls, roll{at: len(p.cur.buf), base: p.next})
	p.tail = segHeaderLen
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (l *Log) commitsDirty() bool {
	for _, p := range l.parts {
		p.mu.Lock()
		dirty := p.commitDirty
		p.mu.Unlock()
		if dirty {
			return true
		}
	}
	return false
}

// saveCommitted writes the committed offsets of every partition whose
// offsets changed.
func (l *Log) saveCommitted() {
	l.persistMu.Lock()
	defer l.persistMu.Unlock()
	for _, p := range l.parts {
		p.mu.Lock()
		if !p.commitDirty {
			p.mu.Unlock()
			continue
		}
		data, err := json.Marshal(p.committed)
		p.commitDirty = false
		p.mu.Unlock()
		if err == nil {
			err = atomicfile.Write(filepath.Join(p.dir, commitFile), data)
		}
		if err != nil {
			p.log.Error("readings log: saving committed offsets", "err", err)
			p.mu.Lock()
			p.commitDirty = true
			p.mu.Unlock()
		}
	}
}

// loadCommitted reads the partition's committed offsets; groups no longer
// registered are dropped.
func (p *partition) loadCommitted() error {
	data, err := os.ReadFile(filepath.Join(p.dir, commitFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var c map[string]int64
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("%s: %w", commitFile, err)
	}
	for g, off := range c {
		if !p.l.groups[g] {
			p.log.Info("readings log: dropping the committed offset of a group no longer registered", "group", g, "offset", off)
			p.commitDirty = true
			continue
		}
		p.committed[g] = min(off, p.next)
	}
	return nil
}
