package worker

import (
	"fmt"
	"time"

	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
)

// evictAfter is how many commit intervals an open block stays in memory
// without a new reading; it is saved already, so dropping it only starts a
// new block for the series' next reading. Eviction, of blocks and of quiet
// devices' window state (Config.UnloadAfter), runs every evictEvery
// intervals.
const (
	evictAfter = 30
	evictEvery = 10
)

// commit stores everything produced since the last commit with the offset
// to resume from, in one synced batch. It writes nothing when nothing
// changed.
func (w *Worker) commit() error {
	if w.cfg.CanWrite != nil && !w.cfg.CanWrite() {
		// Below the disk's write floor: keep everything for a later
		// commit (Run waits), or for the re-read after a restart.
		return nil
	}
	w.cycles++
	w.eng.Advance(w.cfg.Now().UnixNano())
	out := w.eng.TakeOutput()
	w.pending.Results = append(w.pending.Results, out.Results...)
	w.pending.Late = append(w.pending.Late, out.Late...)
	delta, err := w.eng.TakeDelta()
	if err != nil {
		return fmt.Errorf("worker %d: %w", w.cfg.Partition, err)
	}
	resume := w.next
	for _, d := range w.devs {
		for _, h := range d.held {
			resume = min(resume, h.offset)
		}
	}
	moved := resume != w.c.Committed
	if !w.dirtyAny && len(w.feedReadings) == 0 && delta.Empty() && len(w.pending.Results) == 0 && len(w.pending.Late) == 0 && !moved {
		w.lastCommit = time.Now()
		w.evict()
		w.publish()
		return nil
	}
	b := w.cfg.Store.NewBatch(w.cfg.Partition)
	b.SetOffset(resume)
	b.PutEngine(delta)
	if err := b.PutOutput(w.pending); err != nil {
		b.Abandon()
		return err
	}
	for name, d := range w.devs {
		for epoch := range d.setsDirty {
			b.PutDedup(name, epoch, d.sets[epoch].Append(nil))
		}
		if d.dirty {
			if err := b.PutDevice(&d.info); err != nil {
				b.Abandon()
				return err
			}
		}
	}
	for _, st := range w.status {
		if err := b.PutStatus(st); err != nil {
			b.Abandon()
			return err
		}
	}
	for _, pc := range w.conflicts {
		if err := b.PutConflict(pc.c, pc.offset, pc.index); err != nil {
			b.Abandon()
			return err
		}
	}
	if err := b.FeedReadings(w.feedReadings); err != nil {
		b.Abandon()
		return err
	}
	for _, sb := range w.sealed {
		w.putBlock(b, sb.k, sb.ob)
	}
	for k, ob := range w.blocks {
		if ob.dirty {
			w.putBlock(b, k, ob)
		}
	}
	size := b.Len()
	if w.cfg.Committer != nil {
		err = w.cfg.Committer.Commit(b, resume)
	} else {
		err = b.Commit()
	}
	if err != nil {
		return fmt.Errorf("worker %d: %w", w.cfg.Partition, err)
	}
	// Durable: clear what was saved.
	for _, d := range w.devs {
		clear(d.setsDirty)
		d.dirty = false
	}
	for _, ob := range w.blocks {
		ob.dirty = false
	}
	clear(w.sealed)
	w.sealed = w.sealed[:0]
	clear(w.feedReadings)
	w.feedReadings = w.feedReadings[:0]
	w.status = w.status[:0]
	clear(w.conflicts)
	w.conflicts = w.conflicts[:0]
	if w.cfg.Observe != nil {
		w.cfg.Observe(w.pending.Results)
	}
	if time.Since(w.hourStart) >= time.Hour {
		w.hourStart, w.keptThisHour = time.Now(), 0
	}
	w.eng.Recycle(w.pending)
	w.pending = window.TrimOutput(out)
	w.pending.Results, w.pending.Late = w.pending.Results[:0], w.pending.Late[:0]
	w.dirtyAny = false
	w.sinceSave = 0
	w.commits++
	w.lastCommit = time.Now()
	w.c.Commits++
	w.c.CommitBytes += uint64(size)
	w.c.Committed = resume
	w.c.DedupClosedGaps = 0
	for _, d := range w.devs {
		for _, s := range d.sets {
			w.c.DedupClosedGaps += s.Closed
		}
	}
	w.evict()
	w.publish()
	if w.cfg.Committer == nil {
		if err := w.cfg.Log.Commit(Group, w.cfg.Partition, resume); err != nil {
			w.log.Warn("readings log commit", "err", err)
		}
	}
	return nil
}

func (w *Worker) putBlock(b *store.Batch, k seriesKey, ob *openBlock) {
	b.PutBlock(k.device, k.channel, k.q, ob.first.TimeNs, ob.first.Epoch, ob.first.Seq, ob.enc.Bytes())
}

// evict drops saved open blocks of series without a recent reading, and
// the saved window state of devices without one, so memory follows the
// active series and devices, not every one ever seen. It runs after a
// commit stored everything (or found nothing to store).
func (w *Worker) evict() {
	if w.cycles%evictEvery != 0 {
		return
	}
	for k, ob := range w.blocks {
		if !ob.dirty && w.cycles-ob.lastUse > evictAfter {
			delete(w.blocks, k)
		}
	}
	if w.cfg.UnloadAfter > 0 {
		w.eng.Unload(w.eng.Now() - int64(w.cfg.UnloadAfter))
	}
}

// publish copies the counters for Stats.
func (w *Worker) publish() {
	w.c.Next = w.next
	w.c.Engine = w.eng.Stats()
	w.c.Held = w.heldCount
	w.c.OpenBlocks = len(w.blocks)
	w.mu.Lock()
	w.stats = w.c
	w.mu.Unlock()
}
