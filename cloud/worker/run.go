package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gridedge/gridedge/cloud/dedup"
	"github.com/gridedge/gridedge/cloud/intake"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/store/seriesblock"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

// fetchMax is the most records taken from the log at once.
const fetchMax = 256

// Run consumes the partition until ctx ends, then commits what it has and
// returns nil. An error means the worker's memory may be ahead of its
// stored state: start a new Worker (New restores the stored state).
func (w *Worker) Run(ctx context.Context) error {
	rd, err := w.cfg.Log.Open(w.cfg.Partition, w.next)
	if err != nil {
		return fmt.Errorf("worker %d: open log at %d: %w", w.cfg.Partition, w.next, err)
	}
	defer rd.Close()
	w.lastCommit = time.Now()
	w.hourStart = w.lastCommit
	w.publish()
	for {
		if !w.waitForDisk(ctx) {
			// Stopped while the disk was full: what was not committed is
			// re-read from the log after the restart.
			return nil
		}
		wait := w.cfg.CommitInterval - time.Since(w.lastCommit)
		fctx, cancel := context.WithTimeout(ctx, max(wait, time.Millisecond))
		recs, err := rd.Fetch(fctx, fetchMax)
		cancel()
		switch {
		case err == nil:
			for i := range recs {
				if err := w.process(recs[i].Offset, recs[i].Key, recs[i].Value); err != nil {
					return err
				}
				w.next = recs[i].Offset + 1
			}
			w.publish()
		case ctx.Err() != nil:
			return w.commit()
		case errors.Is(err, context.DeadlineExceeded):
			w.c.Ticks++
		default:
			return fmt.Errorf("worker %d: read log: %w", w.cfg.Partition, err)
		}
		if err := w.release(false); err != nil {
			return err
		}
		if w.sinceSave >= w.cfg.CommitReadings || time.Since(w.lastCommit) >= w.cfg.CommitInterval {
			if err := w.commit(); err != nil {
				return err
			}
		}
	}
}

// waitForDisk returns once the store may be written (true), or false when
// ctx ends first. While the disk is below its write floor the worker
// neither commits (the store's write-ahead log must never hit a full disk)
// nor reads on (memory stays bounded); it looks again every commit
// interval.
func (w *Worker) waitForDisk(ctx context.Context) bool {
	for w.cfg.CanWrite != nil && !w.cfg.CanWrite() {
		if !w.diskWaiting {
			w.diskWaiting = true
			w.log.Error("disk below its write floor: worker commits held until space returns")
		}
		w.c.DiskWaits++
		w.publish()
		t := time.NewTimer(w.cfg.CommitInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
	if w.diskWaiting {
		w.diskWaiting = false
		w.log.Info("disk space back: worker commits resume")
	}
	return true
}

// process applies one record; key is its device (intake keys records by
// the device of their topic, which a data batch must match).
func (w *Worker) process(offset int64, key, value []byte) error {
	w.c.Records++
	rec, err := intake.DecodeRecord(value)
	if err != nil {
		w.c.Malformed++
		w.log.Error("readings log record skipped", "offset", offset, "err", err)
		return nil
	}
	switch rec.Kind {
	case intake.KindStatus:
		return w.applyStatus(rec)
	case intake.KindData:
		device := w.intern(key)
		d := w.dev(device)
		if err := w.loadInfo(device, d); err != nil {
			return err
		}
		if w.hold(d, offset, rec) {
			return nil
		}
		return w.applyBatch(offset, rec, device, d)
	}
	return nil
}

// hold keeps a new device's data until its status (zone) arrives or the
// grace period passes; other devices go on.
func (w *Worker) hold(d *devState, offset int64, rec intake.Record) bool {
	if d.known || w.cfg.ZoneGrace == 0 {
		return false
	}
	if len(d.held) == 0 {
		d.waitSince = w.cfg.Now()
	}
	// The record's bytes belong to the log reader: keep a copy.
	rec.Payload = append([]byte(nil), rec.Payload...)
	d.held = append(d.held, heldRecord{offset: offset, rec: rec})
	w.heldCount++
	return true
}

// release applies held records of devices whose status came or whose grace
// passed (all of them when force, or when too many are held).
func (w *Worker) release(force bool) error {
	if w.heldCount == 0 {
		return nil
	}
	now := w.cfg.Now()
	force = force || w.heldCount > w.cfg.MaxHeld
	for name, d := range w.devs {
		if len(d.held) == 0 {
			continue
		}
		if !d.known && !force && now.Sub(d.waitSince) < w.cfg.ZoneGrace {
			continue
		}
		if !d.known {
			w.log.Info("no status from a new device within the grace period; its calendar windows use the configured zone", "device", name, "grace", w.cfg.ZoneGrace)
			d.known = true
		}
		held := d.held
		d.held = nil
		w.heldCount -= len(held)
		for _, h := range held {
			if err := w.applyBatch(h.offset, h.rec, name, d); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *Worker) applyStatus(rec intake.Record) error {
	if len(rec.Payload) == 0 {
		return nil
	}
	st, err := wire.DecodeStatus(rec.Payload)
	if err != nil {
		w.c.Malformed++
		return nil
	}
	d := w.dev(st.DeviceId)
	d.known = true
	if st.TimeZone != "" {
		if err := w.eng.SetTimeZone(st.DeviceId, st.TimeZone); err != nil {
			w.log.Warn("device time zone not usable; keeping the configured one", "device", st.DeviceId, "err", err)
		}
	}
	status := store.StatusOf(rec.Site, st, time.Unix(0, rec.ReceivedNs))
	if err := w.unsyncedSince(&status); err != nil {
		return err
	}
	w.status = append(w.status, status)
	w.dirtyAny = true
	return nil
}

// unsyncedSince carries the time a device's clock was first reported not
// synced over its consecutive unsynced statuses (across reboots), from the
// statuses not yet committed or else the stored one.
func (w *Worker) unsyncedSince(st *store.Status) error {
	if st.ClockQuality == wire.TimeQuality_TIME_QUALITY_SYNCED.Name() {
		return nil
	}
	st.UnsyncedSince = st.Received
	for i := len(w.status) - 1; i >= 0; i-- {
		if w.status[i].Device == st.Device {
			if prev := w.status[i].UnsyncedSince; !prev.IsZero() && prev.Before(st.Received) {
				st.UnsyncedSince = prev
			}
			return nil
		}
	}
	prev, ok, err := w.cfg.Store.Status(st.Device)
	if err != nil {
		return fmt.Errorf("worker %d: %w", w.cfg.Partition, err)
	}
	if ok && !prev.UnsyncedSince.IsZero() && prev.UnsyncedSince.Before(st.Received) {
		st.UnsyncedSince = prev.UnsyncedSince
	}
	return nil
}

// intern returns the worker's copy of a device or channel name, so names
// read from records allocate once, not per reading.
func (w *Worker) intern(b []byte) string {
	if s, ok := w.names[string(b)]; ok {
		return s
	}
	if len(w.names) >= maxNames {
		clear(w.names) // a bound against hostile name churn; names re-intern
	}
	s := string(b)
	w.names[s] = s
	return s
}

// maxNames bounds the interned names of a worker.
const maxNames = 1 << 20

func (w *Worker) applyBatch(offset int64, rec intake.Record, device string, d *devState) error {
	w.views = w.views[:0]
	h, err := wire.ScanBatch(rec.Payload, func(r *wire.ReadingView) error {
		w.views = append(w.views, *r)
		return nil
	})
	if err == nil && h.DeviceID != device {
		err = fmt.Errorf("batch of device %q under key %q", h.DeviceID, device)
	}
	if err != nil {
		// Intake validated it: a record of another build, or damage.
		w.c.Malformed++
		w.log.Error("readings log batch skipped", "offset", offset, "err", err)
		return nil
	}
	received := time.Unix(0, rec.ReceivedNs)
	rd := intake.NewRedater(h, received, w.cfg.Transit)
	set := d.sets[h.SeqEpoch]
	if set == nil {
		set = new(dedup.Set)
		d.sets[h.SeqEpoch] = set
	}
	w.eng.Advance(rec.ReceivedNs)
	w.readings = w.readings[:0]
	w.dups = w.dups[:0]
	var stored, dups uint64
	for i := range w.views {
		r := &w.views[i]
		if r.WallNs < intake.MinTimeNs || r.WallNs > intake.MaxTimeNs {
			// Intake dead-letters such batches; only a migrated record can
			// carry one. Never stored with a wrapped time.
			w.c.TimeRange++
			continue
		}
		if !set.Add(r.Seq) {
			dups++
			// Dated as its first copy was, to be compared with it.
			rd.Apply(r.TimeQuality, r.MonoNs, &r.WallNs, &r.TimeErrorNs)
			w.dups = append(w.dups, r)
			continue
		}
		if rd.Apply(r.TimeQuality, r.MonoNs, &r.WallNs, &r.TimeErrorNs) {
			w.c.Redated++
		}
		stored++
		channel := w.intern(r.Channel)
		flags := w.flagsOf(r, rec.ReceivedNs)
		if flags == 0 {
			w.readings = append(w.readings, window.Reading{Device: device, Channel: channel, Quantity: r.Quantity,
				TimeNs: r.WallNs, Value: r.Value, Quality: r.TimeQuality, SeqEpoch: h.SeqEpoch, Seq: r.Seq})
		} else {
			d.info.Flagged++
		}
		w.addRaw(device, channel, h.SeqEpoch, r, rec.ReceivedNs, flags, d)
	}
	w.eng.ApplyBatch(w.readings)
	if len(w.dups) > 0 {
		w.conflictIndex = 0
		ri := recordInfo{device: device, site: rec.Site, receivedNs: rec.ReceivedNs}
		if err := w.checkDuplicates(offset, &ri, h.SeqEpoch, w.dups, d); err != nil {
			return fmt.Errorf("worker %d: compare resent readings: %w", w.cfg.Partition, err)
		}
	}
	if stored > 0 {
		d.setsDirty[h.SeqEpoch] = true
	}
	// Readings below the pre-restart high-water mark were counted before.
	if offset >= w.high || stored > 0 {
		d.info.Duplicates += dups
		w.c.Duplicates += dups
	}
	d.info.ReadingsStored += stored
	w.c.Stored += stored
	if d.info.Site == "" || d.info.Site != rec.Site {
		d.info.Site = rec.Site
	}
	if d.info.FirstSeen.IsZero() {
		d.info.FirstSeen = received.UTC()
	}
	if received.After(d.info.LastSeen) {
		d.info.LastSeen = received.UTC()
	}
	for _, r := range w.readings {
		d.info.MaxEventNs = max(d.info.MaxEventNs, r.TimeNs)
	}
	d.dirty = true
	w.dirtyAny = true
	w.sinceSave += int(stored)
	return nil
}

// addRaw appends a new reading to its series' open block, sealing the block
// when full or when the reading is too far in time from its first.
func (w *Worker) addRaw(device, channel string, epoch uint64, r *wire.ReadingView, receivedNs int64, flags store.Flags, d *devState) {
	k := seriesKey{device, channel, r.Quantity}
	d.addSeries(store.SeriesID{Channel: channel, Quantity: r.Quantity})
	p := seriesblock.Point{TimeNs: r.WallNs, Value: r.Value, ErrNs: r.TimeErrorNs, Quality: store.PackQuality(r.TimeQuality, flags),
		Epoch: epoch, Seq: r.Seq, ReceivedNs: receivedNs}
	ob := w.blocks[k]
	if ob != nil {
		span := p.TimeNs - ob.first.TimeNs
		if ob.enc.Len() >= w.cfg.BlockPoints || span >= int64(store.MaxBlockSpan) || -span >= int64(store.MaxBlockSpan) {
			if ob.dirty {
				// Saved with the next commit; the new block takes the slot.
				w.sealed = append(w.sealed, sealedBlock{k, ob})
			}
			ob = nil
		}
	}
	if ob == nil {
		ob = &openBlock{first: p}
		w.blocks[k] = ob
	}
	_ = ob.enc.Append(p) // never full: sealed at BlockPoints < seriesblock.MaxPoints
	ob.dirty, ob.lastUse = true, w.cycles
	if w.cfg.Store.FeedsReadings() {
		w.feedReadings = append(w.feedReadings, store.RawReading{Device: device, Channel: channel, Quantity: r.Quantity.Name(),
			Time: time.Unix(0, r.WallNs).UTC(), Value: r.Value, TimeQuality: r.TimeQuality.Name(), TimeErrorNs: r.TimeErrorNs,
			SeqEpoch: epoch, Seq: r.Seq, Received: time.Unix(0, receivedNs).UTC(), Flags: flags.Names()})
	}
}
