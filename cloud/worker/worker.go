package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gridedge/gridedge/cloud/dedup"
	"github.com/gridedge/gridedge/cloud/intake"
	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/store/seriesblock"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

// Group is the consumer group workers commit their offsets under.
const Group = "workers"

// Config configures a partition's worker.
type Config struct {
	Partition int
	Log       readlog.Log
	Store     *store.Store
	// Pipelines are the window pipelines (zones already defaulted).
	Pipelines []window.Pipeline
	// CommitInterval is how often produced state is committed (default 1 s,
	// measured on the monotonic clock whatever Now says);
	// also after CommitReadings new readings (default 20,000).
	CommitInterval time.Duration
	CommitReadings int
	// UnloadAfter: a device without a reading for this long (on the Now
	// clock) has its window state, already stored, dropped from memory; it
	// is read back from the store when the device's next reading or idle
	// timeout needs it (window.Engine.Unload). 0 keeps every device's
	// state in memory.
	UnloadAfter time.Duration
	// ZoneGrace is how long a new device's data waits for its status (its
	// time zone) before the configured zone applies (default 2 s).
	ZoneGrace time.Duration
	// Transit is the error bound of readings re-dated from receive time.
	Transit time.Duration
	// BlockPoints is the number of readings after which a raw block is
	// sealed (default 64).
	BlockPoints int
	// MaxHeld bounds the readings held for devices waiting for their status
	// (default 100,000); beyond it they are released with the configured zone.
	MaxHeld int
	// MaxFuture: a reading dated later than its batch's receive time plus
	// this is stored flagged future and kept out of the windows, so it never
	// advances its device's watermark (default DefaultMaxFuture).
	MaxFuture time.Duration
	// Limits are the plausibility ranges per quantity; a reading outside is
	// stored flagged implausible and kept out of the windows (nil: none).
	Limits Limits
	// ConflictsPerHour bounds the conflicts kept per hour (default 1,000);
	// beyond it they are only counted (Stats.ConflictsNotKept).
	ConflictsPerHour int
	// CanWrite, when set, is asked before each commit: while it is false
	// (the disk is below its write floor) the worker neither commits nor
	// reads on, and resumes by itself once it is true again.
	CanWrite func() bool
	// Observe, when set, is called with the results of each commit once
	// they are durable (e.g. dataset quality metrics); it must not keep
	// the slice. After a restart the re-read results are observed again.
	Observe func([]window.Result)
	// Committer, when set, makes each commit durable instead of the store
	// batch's own Commit and the readings log's group commit: the cluster
	// wiring sends the batch to Kafka in one transaction with next, the
	// offset to resume from, then writes it to the store. An error aborts
	// the commit: the worker stops (Run returns it) and is restored.
	Committer Committer
	Now       func() time.Time
	Logger    *slog.Logger
}

// Committer makes a worker's commit durable (Config.Committer). Commit
// owns b: it commits or abandons it.
type Committer interface {
	Commit(b *store.Batch, next int64) error
}

// Stats are a worker's counters.
type Stats struct {
	Records, Stored, Duplicates, Redated, Malformed uint64
	// Future and Implausible count readings stored flagged (kept out of
	// the windows); TimeRange readings outside 1970..2116 skipped (intake
	// dead-letters such batches; only a migrated record can carry one).
	Future, Implausible, TimeRange uint64
	// Conflicts counts resent identities with other content,
	// ConflictsNotKept those beyond ConflictsPerHour, Unverified resent
	// estimated or corrected readings not found near their time.
	Conflicts, ConflictsNotKept, Unverified uint64
	// DiskWaits counts commit intervals spent waiting for disk space.
	DiskWaits            uint64
	Commits, CommitBytes uint64
	Next                 int64 // next offset to read
	Committed            int64 // offset stored with the last commit
	Engine               window.Stats
	Held                 int
	OpenBlocks           int
	DedupClosedGaps      uint64
	// Ticks counts commit intervals that passed without a record (idle
	// cycles); while it grows and Commits does not, the worker writes nothing.
	Ticks uint64
}

type seriesKey struct {
	device, channel string
	q               wire.Quantity
}

type openBlock struct {
	enc     seriesblock.Encoder
	first   seriesblock.Point
	dirty   bool
	lastUse uint64 // commit interval (cycles) of the last reading appended
}

// sealedBlock is a full block not yet saved.
type sealedBlock struct {
	k  seriesKey
	ob *openBlock
}

type devState struct {
	info      store.DeviceInfo
	dirty     bool
	known     bool // status seen or state restored: its zone question is settled
	waitSince time.Time
	held      []heldRecord
	sets      map[uint64]*dedup.Set
	setsDirty map[uint64]bool
	// seriesIdx indexes info.Series once it is longer than
	// seriesScanMax; shorter lists are scanned.
	seriesIdx map[store.SeriesID]bool
}

// seriesScanMax is the longest series list addSeries scans instead of
// keeping an index: most devices have a few channels, and a map per
// device costs more than the list.
const seriesScanMax = 16

// addSeries records that the device has series id; true if it is new.
func (d *devState) addSeries(id store.SeriesID) bool {
	if d.seriesIdx == nil && len(d.info.Series) < seriesScanMax {
		for _, s := range d.info.Series {
			if s == id {
				return false
			}
		}
		d.info.Series = append(d.info.Series, id)
		return true
	}
	if d.seriesIdx == nil {
		d.seriesIdx = make(map[store.SeriesID]bool, len(d.info.Series))
		for _, s := range d.info.Series {
			d.seriesIdx[s] = true
		}
	}
	if d.seriesIdx[id] {
		return false
	}
	d.seriesIdx[id] = true
	d.info.Series = append(d.info.Series, id)
	return true
}

type heldRecord struct {
	offset int64
	rec    intake.Record
}

// Worker consumes one partition. Run it once.
type Worker struct {
	cfg    Config
	log    *slog.Logger
	eng    *window.Engine
	devs   map[string]*devState
	blocks map[seriesKey]*openBlock
	sealed []sealedBlock
	status []store.Status

	next      int64 // next offset to read
	high      int64 // offsets below were processed at least once before a restart
	sinceSave int
	pending   window.Output
	dirtyAny  bool
	commits   uint64
	cycles    uint64 // commit intervals, with or without a write
	heldCount int
	readings  []window.Reading
	views     []wire.ReadingView
	names     map[string]string
	dups      []*wire.ReadingView
	conflicts []pendingConflict
	// feedReadings are the readings stored since the last commit, for the
	// results feed (only when the store feeds raw readings).
	feedReadings []store.RawReading
	// conflictIndex numbers the conflicts of the record being applied;
	// keptThisHour and hourStart bound the conflicts kept.
	conflictIndex int
	keptThisHour  int
	hourStart     time.Time
	diskWaiting   bool
	c             Stats // owned by Run
	mu            sync.Mutex
	stats         Stats // published copy of c
	lastCommit    time.Time
}

// New restores partition cfg.Partition's state from the store.
func New(cfg Config) (*Worker, error) {
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = time.Second
	}
	if cfg.CommitReadings <= 0 {
		cfg.CommitReadings = 20_000
	}
	if cfg.ZoneGrace < 0 {
		cfg.ZoneGrace = 0
	}
	if cfg.Transit <= 0 {
		cfg.Transit = intake.DefaultTransitBound
	}
	if cfg.BlockPoints <= 0 {
		cfg.BlockPoints = 64
	}
	if cfg.MaxHeld <= 0 {
		cfg.MaxHeld = 100_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxFuture <= 0 {
		cfg.MaxFuture = DefaultMaxFuture
	}
	if cfg.ConflictsPerHour <= 0 {
		cfg.ConflictsPerHour = 1000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	w := &Worker{cfg: cfg, log: cfg.Logger.With("partition", cfg.Partition),
		devs: map[string]*devState{}, blocks: map[seriesKey]*openBlock{}, names: map[string]string{}}
	st, err := cfg.Store.LoadPartition(cfg.Partition, func(device string, epoch uint64, b []byte) error {
		s := new(dedup.Set)
		if err := s.Decode(b); err != nil {
			return fmt.Errorf("device %s epoch %d: %w", device, epoch, err)
		}
		w.dev(device).sets[epoch] = s
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("worker %d: %w", cfg.Partition, err)
	}
	w.next, w.high = st.Next, st.Next
	w.c.Committed = st.Next
	if st.EngineHeader != nil {
		w.eng, err = window.RestoreDelta(cfg.Pipelines, st.EngineHeader, st.EngineDevices, w.engineOptions()...)
		if errors.Is(err, window.ErrCheckpoint) {
			// Another pipeline configuration: its windows cannot be
			// continued. The new pipelines apply from here on.
			w.log.Warn("window state of another pipeline configuration dropped; the new pipelines start from the next reading", "err", err)
			err = nil
			w.eng = nil
		}
		if err != nil {
			return nil, fmt.Errorf("worker %d: %w", cfg.Partition, err)
		}
	}
	if w.eng == nil {
		if w.eng, err = window.New(cfg.Pipelines, w.engineOptions()...); err != nil {
			return nil, fmt.Errorf("worker %d: %w", cfg.Partition, err)
		}
	}
	// Devices with restored state are known: their zone is in the engine.
	for _, d := range w.devs {
		d.known = true
	}
	return w, nil
}

// engineOptions: the engine logs through the worker and loads the
// devices it unloaded from the partition's stored state.
func (w *Worker) engineOptions() []window.Option {
	return []window.Option{
		window.WithLogger(w.log),
		window.WithStateLoader(func(device string) ([]byte, error) {
			return w.cfg.Store.EngineDevice(w.cfg.Partition, device)
		}),
	}
}

func (w *Worker) dev(name string) *devState {
	d := w.devs[name]
	if d == nil {
		d = &devState{sets: map[uint64]*dedup.Set{}, setsDirty: map[uint64]bool{}}
		w.devs[name] = d
	}
	return d
}

// loadInfo reads a device's stored counters the first time it is seen.
func (w *Worker) loadInfo(name string, d *devState) error {
	if d.info.ID != "" {
		return nil
	}
	info, ok, err := w.cfg.Store.Device(name)
	if err != nil {
		return err
	}
	if ok {
		d.info, d.known = info, true
	} else {
		d.info.ID = name
	}
	return nil
}

// Stats returns a snapshot of the worker's counters.
func (w *Worker) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}
