package buffer

import (
	"fmt"

	"github.com/gridedge/gridedge/shared/periodic"
)

// startBackground starts the periodic sync (for stores that do not sync
// themselves) and the maintenance. Both run from timers: an open buffer
// holds no goroutine between runs, so a process with thousands of buffers
// (the simulator's meters) does not pay a parked stack for each.
func (b *Buffer) startBackground() {
	if _, ok := b.db.(interface{ syncsItself() }); !ok {
		b.syncer = periodic.Start(b.o.syncInterval, func() {
			if err := b.db.sync(); err != nil {
				b.log.Error("periodic sync failed", "err", err)
			}
		})
	}
	b.maint = periodic.Start(b.o.gcInterval, b.maintain)
}

// stopBackground waits for a sync or maintenance run in progress; none
// starts afterwards.
func (b *Buffer) stopBackground() {
	if b.syncer != nil {
		b.syncer.Stop()
	}
	b.maint.Stop()
}

// Sync forces everything appended so far to disk.
func (b *Buffer) Sync() error {
	if err := b.db.sync(); err != nil {
		return fmt.Errorf("buffer: sync: %w", err)
	}
	return nil
}

// Maintain asks for the quota to be enforced now, serialized with the
// periodic maintenance. It never blocks.
func (b *Buffer) Maintain() {
	b.maint.Kick(func() {
		if err := b.enforceQuota(); err != nil {
			b.log.Error("disk quota enforcement failed", "err", err)
		}
	})
}

// maintain deletes acked readings that waited for space (when there is
// room again), lets the store reclaim space and enforces the quota. Below
// the write floor it does nothing: reclaiming space writes too.
func (b *Buffer) maintain() {
	b.mu.Lock()
	writable := !b.closed && b.flushPending()
	b.mu.Unlock()
	if !writable {
		return
	}
	b.db.maintain()
	b.diskBytes.Store(b.db.diskBytes())
	if err := b.enforceQuota(); err != nil {
		b.log.Error("disk quota enforcement failed", "err", err)
	}
}
