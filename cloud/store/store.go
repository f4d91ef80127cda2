package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/gridedge/gridedge/shared/wire"
)

// DefaultWindowSize is the window size kept when none is configured.
const DefaultWindowSize = time.Minute

// DefaultOutOfOrderness is how far behind a device's newest reading its
// watermark trails when not configured.
const DefaultOutOfOrderness = 10 * time.Second

// ErrBatchTooLarge means a chunk of MaxReadingsPerTxn readings did not fit
// in one Badger transaction (only possible with very many window sizes).
// Chunks before it stay stored; a resend deduplicates them.
var ErrBatchTooLarge = errors.New("store: batch too large for one transaction")

// Option changes how a Store is opened.
type Option func(*settings)

type settings struct {
	windowSizes     []time.Duration
	outOfOrderness  time.Duration
	logger          *slog.Logger
	syncWrites      bool
	memTableSize    int64
	deadLetterLimit int
	statusHook      func(Status)
}

// WithStatusHook calls fn with every status PutStatus has stored, after its
// commit (e.g. to pass a device's time zone to a windowing engine). fn runs
// on the caller's goroutine and must not block.
func WithStatusHook(fn func(Status)) Option { return func(s *settings) { s.statusHook = fn } }

// WithWindowSizes sets the tumbling-window sizes maintained for every series.
// Each must be positive; windows are aligned to the Unix epoch (UTC).
func WithWindowSizes(sizes ...time.Duration) Option {
	return func(s *settings) { s.windowSizes = slices.Clone(sizes) }
}

// WithOutOfOrderness sets the bound subtracted from a device's newest event
// time to form its watermark; a window closes when the watermark passes its end.
func WithOutOfOrderness(d time.Duration) Option {
	return func(s *settings) { s.outOfOrderness = d }
}

// WithLogger sets the logger for the store and Badger (warnings and errors).
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.logger = l } }

// WithSyncWrites turns off fsync on commit when false. Only benchmarks that
// measure the cost of fsync should use it: without it a crash loses batches
// that were already acknowledged.
func WithSyncWrites(on bool) Option { return func(s *settings) { s.syncWrites = on } }

// DefaultDeadLetterLimit is how many dead letters are kept when not configured.
const DefaultDeadLetterLimit = 10_000

// WithDeadLetterLimit bounds the dead-letter area; the oldest are deleted
// beyond it (checked every 64 new dead letters, so it may briefly exceed it).
func WithDeadLetterLimit(n int) Option { return func(s *settings) { s.deadLetterLimit = n } }

// WithMemTableSize sets Badger's memtable size in bytes; the largest batch a
// transaction can hold grows with it.
func WithMemTableSize(n int64) Option { return func(s *settings) { s.memTableSize = n } }

// Store is the collector's Badger-backed state. Its methods are safe for
// concurrent use; ApplyBatch calls for different devices run in parallel.
type Store struct {
	db  *badger.DB
	cfg settings
	log *slog.Logger
	seq *badger.Sequence
	// deviceLocks serialise the batch transactions of one device (they all
	// read and write its info key) so they never conflict; batches of
	// different devices commit concurrently, and Badger then writes and
	// fsyncs their commits together.
	deviceLocks [64]sync.Mutex

	deadLetterPuts atomic.Uint64

	ingestLog *logState
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts ...Option) (*Store, error) {
	cfg := settings{
		windowSizes:     []time.Duration{DefaultWindowSize},
		outOfOrderness:  DefaultOutOfOrderness,
		logger:          slog.Default(),
		syncWrites:      true,
		memTableSize:    64 << 20,
		deadLetterLimit: DefaultDeadLetterLimit,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if len(cfg.windowSizes) == 0 {
		return nil, errors.New("store: at least one window size is required")
	}
	for _, d := range cfg.windowSizes {
		if d <= 0 {
			return nil, fmt.Errorf("store: window size %v must be positive", d)
		}
	}
	if cfg.deadLetterLimit < 1 {
		return nil, fmt.Errorf("store: dead-letter limit %d must be at least 1", cfg.deadLetterLimit)
	}
	if cfg.outOfOrderness < 0 {
		return nil, fmt.Errorf("store: out-of-orderness %v must not be negative", cfg.outOfOrderness)
	}
	bopts := badger.DefaultOptions(dir).
		WithSyncWrites(cfg.syncWrites).
		WithMemTableSize(cfg.memTableSize).
		WithLogger(badgerLogger{cfg.logger}).
		WithLoggingLevel(badger.WARNING)
	db, err := badger.Open(bopts)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	seq, err := db.GetSequence([]byte("~deadletter-id"), 64)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: dead-letter sequence: %w", err)
	}
	il, err := openLog(db)
	if err != nil {
		seq.Release()
		db.Close()
		return nil, fmt.Errorf("store: ingest log: %w", err)
	}
	return &Store{db: db, cfg: cfg, log: cfg.logger, seq: seq, ingestLog: il}, nil
}

// Close releases the sequence lease and closes the database.
func (s *Store) Close() error {
	err := s.seq.Release()
	if cerr := s.db.Close(); cerr != nil {
		return fmt.Errorf("store: close: %w", cerr)
	}
	if err != nil {
		return fmt.Errorf("store: release sequence: %w", err)
	}
	return nil
}

// WindowSizes returns the configured window sizes.
func (s *Store) WindowSizes() []time.Duration { return slices.Clone(s.cfg.windowSizes) }

// Result says what ApplyBatch did.
type Result struct {
	Stored     int      // readings newly stored
	Duplicates int      // readings already stored before (not counted again)
	Seqs       []uint64 // every seq of the batch, stored now or before
	// New are the readings this call stored, in batch order: exactly-once
	// input for anything downstream (a windowing engine, a sink).
	New []*wire.Reading
	// FirstOffset is the ingest-log offset of New[0] when the batch fits
	// one transaction (New[i] is at FirstOffset+i); 0 when nothing was stored.
	FirstOffset uint64
	// WindowsClosed counts windows that got revision 1 in this batch;
	// WindowsRevised counts revision increments: one per reading that
	// changed an already closed window.
	WindowsClosed  int
	WindowsRevised int
	// ContiguousThrough is the highest n such that every seq 1..n of the
	// batch's epoch is stored (agents number readings from 1); 0 when seq 1
	// is missing.
	ContiguousThrough uint64
}

// maxContiguousAdvance bounds the dedup-index lookups one transaction spends
// advancing contiguous_through over readings that arrived earlier out of
// order; the rest is picked up by the next batches.
const maxContiguousAdvance = 100_000

// DeviceInfo is what the store knows about a device.
type DeviceInfo struct {
	ID             string    `json:"id"`
	Site           string    `json:"site"`
	FirstSeen      time.Time `json:"first_seen"`
	LastSeen       time.Time `json:"last_seen"`
	ReadingsStored uint64    `json:"readings_stored"`
	Duplicates     uint64    `json:"duplicates"`
	// MaxEventNs is the newest reading time seen; the watermark trails it.
	MaxEventNs int64 `json:"max_event_ns"`
	// NextCloseNs is the earliest end of the device's open windows
	// (MaxInt64 when none is open).
	NextCloseNs int64 `json:"next_close_ns"`
}

type openWindow struct {
	id        windowID
	agg       aggregate
	existed   bool
	wasClosed bool
	changed   bool
	lateAdds  uint64 // readings added after the window had closed
}

// ApplyBatch stores the batch's new readings and updates its device's
// counters and windows in one transaction that is on disk when it returns
// nil. Readings whose (device, seq_epoch, seq) is already stored are skipped
// and reported as duplicates. The batch must have been validated
// (wire.DecodeBatch). Reading times are stored as sent.
//
// A batch larger than MaxReadingsPerTxn is applied in consecutive
// transactions of that many readings. Each is still atomic and deduplicated,
// so a crash between them leaves a prefix stored and the redelivered batch
// stores exactly the rest; the ack is only built after all of them.
func (s *Store) ApplyBatch(site string, b *wire.Batch, received time.Time) (Result, error) {
	lock := &s.deviceLocks[fnv32(b.DeviceId)%uint32(len(s.deviceLocks))]
	lock.Lock()
	defer lock.Unlock()
	total := Result{Seqs: make([]uint64, 0, len(b.Readings))}
	// A seq repeated across chunks is caught by the dedup index, because the
	// earlier chunk is committed first.
	for start := 0; start < len(b.Readings); start += MaxReadingsPerTxn {
		end := min(start+MaxReadingsPerTxn, len(b.Readings))
		res, err := s.applyChunk(site, b, b.Readings[start:end], received)
		if err != nil {
			return Result{}, err
		}
		total.Stored += res.Stored
		total.Duplicates += res.Duplicates
		total.WindowsClosed += res.WindowsClosed
		total.WindowsRevised += res.WindowsRevised
		total.Seqs = append(total.Seqs, res.Seqs...)
		if total.FirstOffset == 0 {
			total.FirstOffset = res.FirstOffset
		}
		total.New = append(total.New, res.New...)
		total.ContiguousThrough = res.ContiguousThrough
	}
	return total, nil
}

// MaxReadingsPerTxn bounds the readings applied in one Badger transaction,
// well below the size at which Badger refuses a transaction with the default
// memtable and several window sizes.
const MaxReadingsPerTxn = 4096

func (s *Store) applyChunk(site string, b *wire.Batch, readings []*wire.Reading, received time.Time) (Result, error) {
	var res Result
	var logBlock uint64 // first offset reserved in the ingest log, 0 if none
	defer func() {
		if logBlock != 0 {
			s.ingestLog.resolve(logBlock)
		}
	}()
	err := s.db.Update(func(txn *badger.Txn) error {
		res = Result{Seqs: make([]uint64, 0, len(readings))}
		info, err := getDevice(txn, b.DeviceId)
		if err != nil {
			return err
		}
		if info.ID == "" {
			info = DeviceInfo{ID: b.DeviceId, FirstSeen: received.UTC(), MaxEventNs: math.MinInt64, NextCloseNs: math.MaxInt64}
		}
		windows := map[windowID]*openWindow{}
		seen := make(map[uint64]struct{}, len(readings))
		var value [25]byte
		for _, r := range readings {
			res.Seqs = append(res.Seqs, r.Seq)
			if _, dup := seen[r.Seq]; dup {
				res.Duplicates++
				continue
			}
			seen[r.Seq] = struct{}{}
			dk := dedupKey(b.DeviceId, b.SeqEpoch, r.Seq)
			switch _, err := txn.Get(dk); {
			case err == nil:
				res.Duplicates++
				continue
			case !errors.Is(err, badger.ErrKeyNotFound):
				return fmt.Errorf("dedup lookup: %w", err)
			}
			if err := txn.Set(dk, nil); err != nil {
				return err
			}
			binary.BigEndian.PutUint64(value[0:], math.Float64bits(r.Value))
			binary.BigEndian.PutUint64(value[8:], uint64(r.TimeErrorNs))
			binary.BigEndian.PutUint64(value[16:], uint64(received.UnixNano()))
			value[24] = byte(r.TimeQuality)
			if err := txn.Set(readingKey(b.DeviceId, r.Channel, r.Quantity, r.WallNs, b.SeqEpoch, r.Seq), slices.Clone(value[:])); err != nil {
				return err
			}
			for _, size := range s.cfg.windowSizes {
				id := windowID{Device: b.DeviceId, Channel: r.Channel, Quantity: r.Quantity, Size: size, StartNs: windowStart(r.WallNs, size)}
				w, err := loadWindow(txn, windows, id)
				if err != nil {
					return err
				}
				w.agg.add(r.Value)
				w.changed = true
				if w.wasClosed {
					w.lateAdds++
				}
			}
			res.Stored++
			res.New = append(res.New, r)
			info.MaxEventNs = max(info.MaxEventNs, r.WallNs)
		}
		if res.Stored > 0 {
			// Reserved last, so the block is held for as short a time as possible.
			logBlock = s.ingestLog.reserve(res.Stored)
			res.FirstOffset = logBlock
			for i, r := range res.New {
				if err := txn.Set(logKey(logBlock+uint64(i)), logValue(b.DeviceId, b.SeqEpoch, r, received.UnixNano())); err != nil {
					return err
				}
			}
		}
		if res.ContiguousThrough, err = advanceContiguous(txn, b.DeviceId, b.SeqEpoch, seen); err != nil {
			return err
		}
		info.Site = site
		info.LastSeen = received.UTC()
		info.ReadingsStored += uint64(res.Stored)
		info.Duplicates += uint64(res.Duplicates)
		if res.Stored > 0 {
			closed, revised, err := s.settleWindows(txn, &info, windows)
			if err != nil {
				return err
			}
			res.WindowsClosed, res.WindowsRevised = closed, revised
		}
		return putJSON(txn, deviceKey(prefixDevice, b.DeviceId), info)
	})
	if errors.Is(err, badger.ErrTxnTooBig) {
		return Result{}, fmt.Errorf("%w: %d readings", ErrBatchTooLarge, len(readings))
	}
	if err != nil {
		return Result{}, fmt.Errorf("store: apply batch of %s: %w", b.DeviceId, err)
	}
	return res, nil
}

// advanceContiguous moves the epoch's contiguous_through over the seqs this
// transaction holds (held) and over readings stored before, and returns it.
func advanceContiguous(txn *badger.Txn, device string, epoch uint64, held map[uint64]struct{}) (uint64, error) {
	key := contiguousKey(device, epoch)
	var through uint64
	item, err := txn.Get(key)
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
	case err != nil:
		return 0, fmt.Errorf("contiguous lookup: %w", err)
	default:
		if err := item.Value(func(v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("store: contiguous value has %d bytes", len(v))
			}
			through = binary.BigEndian.Uint64(v)
			return nil
		}); err != nil {
			return 0, err
		}
	}
	start := through
	for through-start < maxContiguousAdvance && through < math.MaxUint64 {
		next := through + 1
		if _, ok := held[next]; !ok {
			_, err := txn.Get(dedupKey(device, epoch, next))
			if errors.Is(err, badger.ErrKeyNotFound) {
				break
			}
			if err != nil {
				return 0, fmt.Errorf("contiguous lookup: %w", err)
			}
		}
		through = next
	}
	if through != start {
		if err := txn.Set(key, binary.BigEndian.AppendUint64(nil, through)); err != nil {
			return 0, err
		}
	}
	return through, nil
}

func loadWindow(txn *badger.Txn, cache map[windowID]*openWindow, id windowID) (*openWindow, error) {
	if w, ok := cache[id]; ok {
		return w, nil
	}
	w := &openWindow{id: id}
	item, err := txn.Get(id.key(prefixWindow))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
	case err != nil:
		return nil, fmt.Errorf("window lookup: %w", err)
	default:
		err := item.Value(func(v []byte) error {
			a, err := unmarshalAggregate(v)
			w.agg = a
			return err
		})
		if err != nil {
			return nil, err
		}
		w.existed, w.wasClosed = true, w.agg.Closed
	}
	cache[id] = w
	return w, nil
}

// settleWindows closes every open window of the device whose end the
// watermark has passed, bumps the revision of closed windows this batch
// changed, and writes the touched windows.
//
// info.NextCloseNs (the earliest end among open windows) spares the scan of
// the open-window index until the watermark can actually close something.
func (s *Store) settleWindows(txn *badger.Txn, info *DeviceInfo, windows map[windowID]*openWindow) (closed, revised int, err error) {
	watermark := info.MaxEventNs - int64(s.cfg.outOfOrderness)
	if info.MaxEventNs == math.MinInt64 {
		watermark = math.MinInt64
	}
	nextClose := int64(math.MaxInt64)
	if watermark >= info.NextCloseNs {
		// Open windows this batch did not touch may close now.
		prefix := append(deviceKey(prefixOpenWindow, info.ID), 0)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		for it.Rewind(); it.Valid(); it.Next() {
			id, perr := parseWindowKey(it.Item().Key())
			if perr != nil {
				it.Close()
				return 0, 0, perr
			}
			if end := id.StartNs + int64(id.Size); end > watermark {
				nextClose = min(nextClose, end)
				continue
			}
			if _, err := loadWindow(txn, windows, id); err != nil {
				it.Close()
				return 0, 0, err
			}
		}
		it.Close()
	} else {
		nextClose = info.NextCloseNs
	}
	defer func() { info.NextCloseNs = nextClose }()
	for _, w := range windows {
		end := w.id.StartNs + int64(w.id.Size)
		switch {
		case w.wasClosed && w.changed:
			w.agg.Revision += w.lateAdds
			revised += int(w.lateAdds)
		case !w.agg.Closed && end <= watermark:
			w.agg.Closed, w.agg.Revision = true, 1
			closed++
			if w.existed {
				if err := txn.Delete(w.id.key(prefixOpenWindow)); err != nil {
					return 0, 0, err
				}
			}
		case !w.existed:
			if err := txn.Set(w.id.key(prefixOpenWindow), nil); err != nil {
				return 0, 0, err
			}
			nextClose = min(nextClose, end)
		case !w.changed:
			continue
		}
		if err := txn.Set(w.id.key(prefixWindow), w.agg.marshal()); err != nil {
			return 0, 0, err
		}
	}
	return closed, revised, nil
}

func getDevice(txn *badger.Txn, device string) (DeviceInfo, error) {
	var info DeviceInfo
	err := getJSON(txn, deviceKey(prefixDevice, device), &info)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return DeviceInfo{}, nil
	}
	return info, err
}

func getJSON(txn *badger.Txn, key []byte, v any) error {
	item, err := txn.Get(key)
	if err != nil {
		return err
	}
	return item.Value(func(b []byte) error {
		if err := json.Unmarshal(b, v); err != nil {
			return fmt.Errorf("decode %q: %w", key, err)
		}
		return nil
	})
}

func putJSON(txn *badger.Txn, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	return txn.Set(key, b)
}

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error("badger: " + fmt.Sprintf(f, a...)) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn("badger: " + fmt.Sprintf(f, a...)) }
func (b badgerLogger) Infof(f string, a ...any)    { b.l.Info("badger: " + fmt.Sprintf(f, a...)) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.l.Debug("badger: " + fmt.Sprintf(f, a...)) }

// fnv32 is FNV-1a, enough to spread device ids over lock stripes.
func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
