package buffer

import (
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4/options"

	"github.com/gridedge/gridedge/shared/wire"
)

// The disk quota policy.
//
// Badger has no quota of its own, and deleting from an LSM tree first
// *adds* tombstones: disk usage falls only after compaction. So the quota is
// enforced on an estimate of the live data (keys + values + per-entry
// overhead, uncompressed, tracked exactly on every append and delete). On
// disk Badger stores readings Snappy-compressed at about a quarter of that
// estimate (measured: ~18 B vs ~82 B per reading), which leaves the
// headroom for tombstones, files in flight and compaction. When live data
// passes the quota, the oldest backlog is thinned first, then dropped, down
// to 80% of it:
//
//  1. Thin: the oldest readings not yet thinned are folded into one reading
//     per (channel, quantity, boot, minute): power-like quantities keep the
//     mean (stamped at the start of the minute), energy counters and states
//     keep their last reading. The summary reuses the sequence number of the
//     minute's last reading, so identities never repeat.
//  2. Drop: when everything is already thinned, the oldest readings are
//     deleted.
//
// Both are counted (Stats.Summarised, Stats.Dropped) and reported in the
// agent's status. Independently, Append refuses new readings while the file
// system has less free space than the reserve (WithMinFree): Badger writes
// through mmapped files and would die of SIGBUS on a full disk.

// liveShare is the fraction of the quota the (uncompressed) live-data
// estimate may use: all of it when Badger compresses (disk use is then about
// a quarter of the estimate), half when it does not (32-bit builds), which
// leaves the other half for tombstones, indexes and compaction.
func liveShare(c options.CompressionType) float64 {
	if c == options.None {
		return 0.5
	}
	return 1.0
}

// thinChunk and dropChunk bound one step of enforcement (and its
// transaction).
const (
	thinChunk = 1024
	dropChunk = 1024
)

func (b *Buffer) liveLimit() int64 { return int64(float64(b.o.quotaBytes) * b.liveShare) }

func (b *Buffer) overQuota() bool {
	return b.o.quotaBytes > 0 && b.liveBytes.Load() > b.liveLimit()
}

// enforceQuota keeps the buffer within its disk quota.
func (b *Buffer) enforceQuota() error {
	if b.o.quotaBytes <= 0 {
		return nil
	}
	if disk := b.diskBytes.Load(); disk > b.o.quotaBytes && !b.overQuota() {
		// Tombstones and files awaiting compaction: reclaimed by Badger in
		// time; dropping data would not shrink them sooner.
		b.log.Warn("buffer directory above quota while live data is within it; waiting for compaction",
			"disk_bytes", disk, "quota_bytes", b.o.quotaBytes, "live_bytes", b.liveBytes.Load())
	}
	if !b.overQuota() {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	// Thinning writes: not below the write floor, and not while acked
	// readings wait to be deleted (they are already counted out).
	if !b.flushPending() {
		return nil
	}
	target := b.liveLimit() * 8 / 10
	summarised, dropped := b.summarised.Load(), b.dropped.Load()
	for b.liveBytes.Load() > target {
		progressed, err := b.thinOldest()
		if err != nil {
			return err
		}
		if !progressed {
			break
		}
	}
	for b.liveBytes.Load() > target && b.length.Load() > 0 {
		if err := b.dropOldest(b.liveBytes.Load() - target); err != nil {
			return err
		}
	}
	b.log.Warn("disk quota reached: oldest backlog thinned/dropped",
		"summarised", b.summarised.Load()-summarised, "dropped", b.dropped.Load()-dropped,
		"live_bytes", b.liveBytes.Load(), "quota_bytes", b.o.quotaBytes)
	return nil
}

type groupKey struct {
	epoch    uint64
	boot     string
	channel  string
	quantity wire.Quantity
	minute   int64
}

type group struct {
	recs []Record
	sum  float64
}

func minuteOf(wallNs int64) int64 { return floorDiv(wallNs, int64(time.Minute)) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// thinOldest folds the oldest not-yet-thinned chunk into per-minute
// summaries. It reports whether there was anything left to thin. Called
// with mu held.
func (b *Buffer) thinOldest() (bool, error) {
	recs, err := b.scanWithSize(b.thinnedThrough+1, thinChunk)
	if err != nil {
		return false, err
	}
	if len(recs) == 0 {
		return false, nil
	}
	// A full chunk may end in the middle of a minute: leave that minute for
	// the next pass so it gets one summary, not two.
	cut := len(recs)
	if len(recs) == thinChunk {
		lastMinute := minuteOf(recs[len(recs)-1].rec.Reading.WallNs)
		for i, r := range recs {
			if minuteOf(r.rec.Reading.WallNs) >= lastMinute {
				cut = i
				break
			}
		}
		if cut == 0 {
			cut = len(recs)
		}
	}
	recs = recs[:cut]
	groups := map[groupKey]*group{}
	var order []groupKey
	sizes := map[uint64]int64{}
	for _, r := range recs {
		rd := r.rec.Reading
		k := groupKey{r.rec.SeqEpoch, r.rec.BootID, rd.Channel, rd.Quantity, minuteOf(rd.WallNs)}
		g, ok := groups[k]
		if !ok {
			g = &group{}
			groups[k] = g
			order = append(order, k)
		}
		g.recs = append(g.recs, r.rec)
		g.sum += rd.Value
		sizes[r.rec.Seq] = r.size
	}
	var puts []kv
	var deletes [][]byte
	var delta int64
	folded := uint64(0)
	for _, k := range order {
		g := groups[k]
		if len(g.recs) < 2 {
			continue
		}
		last := g.recs[len(g.recs)-1]
		summary := &wire.Reading{
			Seq: last.Seq, Channel: last.Reading.Channel, Quantity: last.Reading.Quantity, Value: last.Reading.Value,
			WallNs: last.Reading.WallNs, MonoNs: last.Reading.MonoNs,
			TimeQuality: last.Reading.TimeQuality, TimeErrorNs: last.Reading.TimeErrorNs,
		}
		switch last.Reading.Quantity {
		case wire.Quantity_QUANTITY_ENERGY, wire.Quantity_QUANTITY_STATE:
			// Counters and states: the last value is the truth at the end of the minute.
		default:
			start := k.minute * int64(time.Minute)
			summary.Value = g.sum / float64(len(g.recs))
			summary.MonoNs -= summary.WallNs - start
			summary.WallNs = start
		}
		val, err := encode(last.SeqEpoch, last.BootID, summary)
		if err != nil {
			return false, fmt.Errorf("buffer: thin: %w", err)
		}
		puts = append(puts, kv{key(last.Seq), val})
		delta += entrySize(int64(len(val))) - sizes[last.Seq]
		for _, r := range g.recs[:len(g.recs)-1] {
			deletes = append(deletes, key(r.Seq))
			delta -= sizes[r.Seq]
		}
		folded += uint64(len(g.recs) - 1)
	}
	if err := b.db.apply(puts, deletes); err != nil {
		return false, fmt.Errorf("buffer: thin: %w", err)
	}
	b.liveBytes.Add(delta)
	b.length.Add(-int64(len(deletes)))
	b.summarised.Add(folded)
	b.thinnedThrough = recs[len(recs)-1].rec.Seq
	return true, nil
}

// dropOldest deletes the oldest readings, about need bytes' worth (at most
// one chunk). Called with mu held.
func (b *Buffer) dropOldest(need int64) error {
	recs, err := b.scanWithSize(0, dropChunk)
	if err != nil {
		return err
	}
	var es []entry
	for _, r := range recs {
		if need <= 0 {
			break
		}
		es = append(es, entry{key: key(r.rec.Seq), size: r.size})
		need -= r.size
	}
	if err := b.deleteKeys(es, true); err != nil {
		return err
	}
	b.dropped.Add(uint64(len(es)))
	return nil
}

type sizedRecord struct {
	rec  Record
	size int64
}

func (b *Buffer) scanWithSize(first uint64, limit int) ([]sizedRecord, error) {
	var out []sizedRecord
	err := b.db.scan(key(first), limit, func(k, v []byte) error {
		rec, err := decode(k, v)
		if err != nil {
			return err
		}
		out = append(out, sizedRecord{rec, entrySize(int64(len(v)))})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("buffer: scan: %w", err)
	}
	return out, nil
}
