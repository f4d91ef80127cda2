package worker

import (
	"math"
	"time"

	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/store/seriesblock"
	"github.com/gridedge/gridedge/shared/wire"
)

// DefaultMaxFuture is how far after its batch's receive time a reading may
// be dated before it is flagged (Config.MaxFuture).
const DefaultMaxFuture = 10 * time.Minute

// Range is a plausibility range [Min, Max] of one quantity.
type Range struct{ Min, Max float64 }

// Limits are the plausibility ranges per quantity; a quantity without an
// entry is not checked.
type Limits map[wire.Quantity]Range

// DefaultLimits are generous physical bounds for a building's meters:
// values outside them are a sensor fault, a unit mistake or a forgery.
func DefaultLimits() Limits {
	return Limits{
		wire.Quantity_QUANTITY_ACTIVE_POWER:   {-1e7, 1e7}, // ±10 MW
		wire.Quantity_QUANTITY_REACTIVE_POWER: {-1e7, 1e7},
		wire.Quantity_QUANTITY_APPARENT_POWER: {0, 1e7},
		wire.Quantity_QUANTITY_ENERGY:         {-1e12, 1e12}, // ±1 TWh counter
		wire.Quantity_QUANTITY_VOLTAGE:        {0, 1e5},      // 100 kV
		wire.Quantity_QUANTITY_CURRENT:        {-1e5, 1e5},   // 100 kA
		wire.Quantity_QUANTITY_POWER_FACTOR:   {-1, 1},
		wire.Quantity_QUANTITY_FREQUENCY:      {0, 1000},
		wire.Quantity_QUANTITY_TEMPERATURE:    {-273.15, 1000},
	}
}

// flagsOf says why a new reading must be kept out of the windows.
func (w *Worker) flagsOf(r *wire.ReadingView, receivedNs int64) store.Flags {
	var f store.Flags
	if r.WallNs > receivedNs && r.WallNs-receivedNs > int64(w.cfg.MaxFuture) {
		f |= store.FlagFuture
		w.c.Future++
	}
	if lim, ok := w.cfg.Limits[r.Quantity]; ok && (r.Value < lim.Min || r.Value > lim.Max) {
		f |= store.FlagImplausible
		w.c.Implausible++
	}
	return f
}

// conflictTolerance is how far apart in time the stored and the resent
// copy of a reading are looked for: a re-dated estimated reading moves by
// its transit jitter.
const conflictTolerance = time.Minute

// checkDuplicates compares readings whose identity the range set already
// holds with the reading stored under it, in the same series near the same
// time: in the open block, blocks sealed since the last commit, and the
// store. Same value (and, for synced or RTC times, same time): a plain
// duplicate. Anything else is a conflict: counted, kept (bounded), and the
// first stored reading stays. A reading not found where it was looked for
// is a conflict too, unless its time quality is estimated or corrected:
// those may have been re-dated since their first send, and without a
// seq index they cannot be told from a moved reading (counted unverified).
func (w *Worker) checkDuplicates(offset int64, rec *recordInfo, epoch uint64, dups []*wire.ReadingView, d *devState) error {
	type want struct {
		r     *wire.ReadingView
		found bool
	}
	bySeries := map[seriesKey][]*want{}
	for _, r := range dups {
		k := seriesKey{rec.device, w.intern(r.Channel), r.Quantity}
		bySeries[k] = append(bySeries[k], &want{r: r})
	}
	for k, ws := range bySeries {
		bySeq := make(map[uint64]*want, len(ws))
		lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
		for _, x := range ws {
			bySeq[x.r.Seq] = x
			lo, hi = min(lo, x.r.WallNs), max(hi, x.r.WallNs)
		}
		lo, hi = lo-int64(conflictTolerance), hi+int64(conflictTolerance)
		left := len(ws)
		visit := func(p seriesblock.Point) bool {
			if p.Epoch != epoch || p.TimeNs < lo || p.TimeNs > hi {
				return true
			}
			x := bySeq[p.Seq]
			if x == nil || x.found {
				return true
			}
			x.found = true
			left--
			if !sameContent(p, x.r) {
				w.conflict(offset, rec, epoch, x.r, &p, d)
			}
			return left > 0
		}
		if ob := w.blocks[k]; ob != nil {
			_ = seriesblock.Decode(ob.enc.Bytes(), visit)
		}
		for _, sb := range w.sealed {
			if left > 0 && sb.k == k {
				_ = seriesblock.Decode(sb.ob.enc.Bytes(), visit)
			}
		}
		if left > 0 {
			if err := w.cfg.Store.SeriesPoints(k.device, k.channel, k.q, lo, hi, visit); err != nil {
				return err
			}
		}
		for _, x := range ws {
			if x.found {
				continue
			}
			switch x.r.TimeQuality {
			case wire.TimeQuality_TIME_QUALITY_ESTIMATED, wire.TimeQuality_TIME_QUALITY_CORRECTED:
				w.c.Unverified++
			default:
				w.conflict(offset, rec, epoch, x.r, nil, d)
			}
		}
	}
	return nil
}

// sameContent: the value is the measurement and never changes on a resend;
// the time may, when it was estimated and has been re-dated or corrected.
func sameContent(p seriesblock.Point, r *wire.ReadingView) bool {
	if math.Float64bits(p.Value) != math.Float64bits(r.Value) {
		return false
	}
	q, _ := store.UnpackQuality(p.Quality)
	exact := func(q wire.TimeQuality) bool {
		return q == wire.TimeQuality_TIME_QUALITY_SYNCED || q == wire.TimeQuality_TIME_QUALITY_RTC
	}
	return p.TimeNs == r.WallNs || !exact(q) || !exact(r.TimeQuality)
}

// recordInfo is what a conflict needs of its log record.
type recordInfo struct {
	device, site string
	receivedNs   int64
}

func (w *Worker) conflict(offset int64, rec *recordInfo, epoch uint64, r *wire.ReadingView, stored *seriesblock.Point, d *devState) {
	w.c.Conflicts++
	d.info.Conflicts++
	d.dirty = true
	w.dirtyAny = true
	if w.keptThisHour >= w.cfg.ConflictsPerHour {
		w.c.ConflictsNotKept++
		return
	}
	w.keptThisHour++
	c := store.Conflict{Device: rec.device, Site: rec.site, SeqEpoch: epoch, Seq: r.Seq, Received: time.Unix(0, rec.receivedNs),
		Offered: store.ConflictReading{Channel: w.intern(r.Channel), Quantity: r.Quantity.Name(), Time: time.Unix(0, r.WallNs).UTC(),
			Value: r.Value, TimeQuality: r.TimeQuality.Name()}}
	if stored != nil {
		q, _ := store.UnpackQuality(stored.Quality)
		c.Stored = &store.ConflictReading{Channel: w.intern(r.Channel), Quantity: r.Quantity.Name(), Time: time.Unix(0, stored.TimeNs).UTC(),
			Value: stored.Value, TimeQuality: q.Name()}
	}
	w.conflicts = append(w.conflicts, pendingConflict{c: c, offset: offset, index: w.conflictIndex})
	w.conflictIndex++
	if w.c.Conflicts == 1 || w.c.Conflicts%1000 == 0 {
		w.log.Warn("reading identity resent with other content: the first stored reading stays, the conflict is kept",
			"device", rec.device, "seq_epoch", epoch, "seq", r.Seq, "conflicts", w.c.Conflicts)
	}
}

type pendingConflict struct {
	c      store.Conflict
	offset int64
	index  int
}
