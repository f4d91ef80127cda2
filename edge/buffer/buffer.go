package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"
	"google.golang.org/protobuf/proto"

	"github.com/gridedge/gridedge/shared/diskfree"
	"github.com/gridedge/gridedge/shared/periodic"
	"github.com/gridedge/gridedge/shared/wire"
)

// Record is one buffered reading with what is needed to send it.
type Record struct {
	// SeqEpoch and Seq identify the reading; Reading.Seq equals Seq.
	SeqEpoch uint64
	Seq      uint64
	// BootID is the kernel boot the reading's monotonic time counts from.
	BootID  string
	Reading *wire.Reading
}

// Recovery describes what Open found about the previous process.
type Recovery struct {
	// Unclean is true when the previous process did not Close the buffer
	// (crash, kill -9, power cut).
	Unclean bool
	// LastBuffered is the highest sequence number found in the buffer at
	// open (0 when empty).
	LastBuffered uint64
	// Quarantined is where a buffer directory Badger could not open was
	// moved (empty when none was); QuarantineReason is Badger's error.
	// Its readings are not delivered; they stay there for inspection.
	Quarantined      string
	QuarantineReason string
	// ReservedThrough is the highest number the previous process may have
	// handed out. After an unclean stop, numbers in
	// (max(LastBuffered, acked), ReservedThrough] were either never used or
	// belonged to readings appended after the last sync and lost.
	ReservedThrough uint64
}

// Stats are the buffer's counters since Open.
type Stats struct {
	Len        int64  // readings held now
	Appended   uint64 // readings appended
	Deleted    uint64 // readings deleted because the collector acked them
	Dropped    uint64 // readings dropped to stay within the disk quota
	Summarised uint64 // readings folded into per-minute summaries (quota), not counting the summary kept
	Refused    uint64 // readings refused because the file system was almost full
	// DiskFull is true while the file system holding the buffer has less
	// free space than the reserve (at the last check): new readings are
	// refused until space returns.
	DiskFull bool
	// PendingDeletes is how many acked sequence ranges wait for free space
	// to be deleted (hidden from reads meanwhile).
	PendingDeletes int
	DiskBytes      int64 // disk space the buffer directory uses, at the last check
	LiveBytes      int64 // estimated bytes of the readings held; the quota applies to it
}

// ErrClosed is returned by calls on a closed buffer.
var ErrClosed = errors.New("buffer closed")

// ErrDiskFull is returned (wrapped) by Append when the file system holding
// the buffer has less free space than the configured reserve. Badger
// writes through mmapped files and dies of SIGBUS when the file system
// cannot back them, so the buffer refuses new readings instead.
var ErrDiskFull = errors.New("buffer: file system almost full")

const (
	prefixReading = 'r'
	keyLen        = 9
)

// Buffer is the durable queue. All methods are safe for concurrent use.
type Buffer struct {
	db       store
	backend  Backend
	dir      string
	stateDir string
	o        settings
	log      *slog.Logger

	// mu serialises every mutation, so sequence numbers are committed in
	// order: a reader that has seen seq n has seen everything below n.
	mu    sync.Mutex
	state seqState
	// epoch is state.SeqEpoch, fixed at Open; kept apart so SeqEpoch needs
	// no lock while reserve replaces state.
	epoch    uint64
	next     uint64
	closed   bool
	recovery Recovery

	length     atomic.Int64
	appended   atomic.Uint64
	deleted    atomic.Uint64
	dropped    atomic.Uint64
	summarised atomic.Uint64
	diskBytes  atomic.Int64
	// liveBytes estimates the bytes of readings held (keys, values and
	// per-entry overhead); the quota is enforced on it.
	liveBytes atomic.Int64
	// thinnedThrough is the highest seq the quota has already thinned to
	// per-minute summaries; thinning resumes after it. Guarded by mu.
	thinnedThrough uint64
	liveShare      float64
	// free caches the file system's free bytes; freeAt is when (unix ns).
	free      atomic.Int64
	freeAt    atomic.Int64
	refused   atomic.Uint64
	refusedAt atomic.Int64
	// pending holds acked readings not yet deleted for lack of space.
	pending atomic.Pointer[pendingSet]

	// syncer and maint are the periodic sync (stores that do not sync
	// themselves) and maintenance; timers, not goroutines (maintain.go).
	syncer, maint *periodic.Task
}

// Open opens (creating if needed) the buffer in dir with its sequence state
// in stateDir. The two must differ: wiping dir keeps the sequence counter,
// wiping both starts a new sequence epoch. The backend is chosen by
// WithBackend (default: the one shipped for the platform); Open fails with
// ErrBadgerOn32Bit rather than open Badger where it loses data.
func Open(dir, stateDir string, opts ...Option) (*Buffer, error) {
	o := settings{syncInterval: time.Second, gcInterval: time.Minute, reserve: 1000, log: slog.Default(),
		minFree: 64 << 20, freeBytes: diskfree.Available}
	for _, opt := range opts {
		opt(&o)
	}
	if dir == "" || stateDir == "" {
		return nil, errors.New("buffer: dir and state dir must be set")
	}
	for _, d := range []string{dir, stateDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("buffer: %w", err)
		}
	}
	if same(dir, stateDir) {
		return nil, fmt.Errorf("buffer: state dir %s must differ from the buffer dir", stateDir)
	}
	backend, err := resolve(o.backend, o.forceBadger)
	if o.shared != nil {
		// The shared store keeps its own free-space reserve, once for all.
		backend, err, o.minFree = o.shared.backend(), nil, 0
	}
	if err != nil {
		return nil, err
	}
	log := o.log.With("component", "buffer", "backend", string(backend))
	if backend == BackendBadger && o.minFree > 0 {
		// Opening replays Badger's write-ahead log and may flush it into a
		// new table, written through mmap: on a full disk, SIGBUS.
		if free, err := o.freeBytes(dir); err == nil && free < o.minFree/2 {
			return nil, fmt.Errorf("%w: %d bytes free in %s, Badger needs at least %d to open; free some space", ErrDiskFull, free, dir, o.minFree/2)
		}
	}
	openStore := func() (store, error) {
		if o.shared != nil {
			return o.shared.open(o.namespace)
		}
		if backend == BackendBolt {
			return openBolt(dir, o.quotaBytes)
		}
		return openBadger(dir, log, o.tune)
	}
	db, err := openStore()
	var quarantined, reason string
	if err != nil && o.quarantine && o.shared == nil && quarantinable(err) {
		quarantined = fmt.Sprintf("%s.corrupt-%s", dir, time.Now().UTC().Format("20060102T150405Z"))
		reason = err.Error()
		log.Error("buffer cannot be opened: moving it aside and starting empty; its readings will not be sent",
			"err", err, "moved_to", quarantined)
		if rerr := os.Rename(dir, quarantined); rerr != nil {
			return nil, fmt.Errorf("buffer: %w (moving it aside failed: %v)", err, rerr)
		}
		if merr := os.MkdirAll(dir, 0o750); merr != nil {
			return nil, fmt.Errorf("buffer: %w", merr)
		}
		db, err = openStore()
	}
	if err != nil {
		return nil, fmt.Errorf("buffer: %w", err)
	}
	b := &Buffer{db: db, backend: backend, dir: dir, stateDir: stateDir, o: o, log: log, liveShare: db.liveShare()}
	if err := b.recover(); err != nil {
		db.close()
		return nil, err
	}
	b.recovery.Quarantined, b.recovery.QuarantineReason = quarantined, reason
	b.diskBytes.Store(db.diskBytes())
	b.startBackground()
	return b, nil
}

// quarantinable tells corruption from conditions that moving the directory
// would not fix or would make worse: another process holding the store's
// lock (Badger's matched on its message: it has no sentinel error; bbolt's
// lock wait timing out), permissions, and
// resource shortages (file descriptors, memory or address space for mmap,
// disk space, a read-only file system), which pass.
func quarantinable(err error) bool {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, bolterrors.ErrTimeout) ||
		strings.Contains(err.Error(), "Cannot acquire directory lock") {
		return false
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.ENOSPC, syscall.EROFS, syscall.EIO} {
		if errors.Is(err, e) {
			return false
		}
	}
	return true
}

func same(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

// recover counts what is buffered and sets the next sequence number past
// everything that may have been handed out before.
func (b *Buffer) recover() error {
	var count int64
	var last uint64
	err := b.db.scan([]byte{prefixReading}, math.MaxInt, func(k, v []byte) error {
		count++
		last = seqOf(k)
		b.liveBytes.Add(entrySize(int64(len(v))))
		return nil
	})
	if err != nil {
		return fmt.Errorf("buffer: scan: %w", err)
	}
	b.length.Store(count)
	st, found, err := loadSeqState(b.stateDir)
	if err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	if !found {
		if st, err = newSeqState(); err != nil {
			return fmt.Errorf("buffer: %w", err)
		}
		if count > 0 {
			b.log.Warn("sequence state missing but buffer holds readings; they keep their own epoch, new readings get a new one",
				"buffered", count, "new_epoch", fmt.Sprintf("%016x", st.SeqEpoch))
		}
	}
	b.recovery = Recovery{Unclean: found && !st.Clean, LastBuffered: last, ReservedThrough: st.ReservedThrough}
	if b.recovery.Unclean {
		b.log.Warn("previous run did not close the buffer: readings appended after its last sync may be lost",
			"last_buffered_seq", last, "reserved_through", st.ReservedThrough)
	}
	b.next = max(st.ReservedThrough, last) + 1
	st.ReservedThrough = b.next - 1
	st.Clean = false
	b.state = st
	b.epoch = st.SeqEpoch
	if err := b.state.save(b.stateDir); err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	return nil
}

// Backend is the storage engine in use (never BackendAuto).
func (b *Buffer) Backend() Backend { return b.backend }

// SeqEpoch is the epoch of readings appended by this process.
func (b *Buffer) SeqEpoch() uint64 { return b.epoch }

// Recovery reports what Open found about the previous run.
func (b *Buffer) Recovery() Recovery { return b.recovery }

// NextSeq is the number the next appended reading will get.
func (b *Buffer) NextSeq() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.next
}

// Len is the number of readings held.
func (b *Buffer) Len() int64 { return b.length.Load() }

// Stats returns the counters.
func (b *Buffer) Stats() Stats {
	return Stats{
		Len: b.length.Load(), Appended: b.appended.Load(), Deleted: b.deleted.Load(),
		Dropped: b.dropped.Load(), Summarised: b.summarised.Load(), Refused: b.refused.Load(), DiskBytes: b.diskBytes.Load(), LiveBytes: b.liveBytes.Load(),
		DiskFull: b.o.minFree > 0 && b.free.Load() < b.o.minFree, PendingDeletes: b.pendingRanges(),
	}
}

func key(seq uint64) []byte {
	k := make([]byte, keyLen)
	k[0] = prefixReading
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

func seqOf(k []byte) uint64 { return binary.BigEndian.Uint64(k[1:]) }

// maxTxnEntries keeps one transaction well below Badger's batch limit for
// the memtable size in BadgerOptions (and the simulator's 1 MB: 15% of it
// over ~100 B per entry is ~1600 entries).
const maxTxnEntries = 1000

// Append stores readings taken during boot bootID, assigning each the next
// sequence number (written into r.Seq). When Append returns nil the
// readings are in the buffer; they are on disk after the next sync. A
// reading that is nil or fails validation is rejected before anything is
// stored.
func (b *Buffer) Append(bootID string, rs ...*wire.Reading) error {
	if len(rs) == 0 {
		return nil
	}
	for i, r := range rs {
		if err := validate(r); err != nil {
			return fmt.Errorf("buffer: append reading %d: %w", i, err)
		}
	}
	if err := b.checkFree(); err != nil {
		b.refused.Add(uint64(len(rs)))
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	b.flushPending()
	if err := b.reserve(uint64(len(rs))); err != nil {
		return err
	}
	first := b.next
	for start := 0; start < len(rs); start += maxTxnEntries {
		chunk := rs[start:min(start+maxTxnEntries, len(rs))]
		var size int64
		puts := make([]kv, len(chunk))
		var err error
		for i, r := range chunk {
			r.Seq = first + uint64(start+i)
			puts[i].key = key(r.Seq)
			if puts[i].val, err = encode(b.epoch, bootID, r); err != nil {
				break
			}
			size += entrySize(int64(len(puts[i].val)))
		}
		if err == nil {
			err = b.db.apply(puts, nil)
		}
		if err == nil {
			b.liveBytes.Add(size)
		}
		if err != nil {
			// Numbers already reserved are skipped, never reused.
			b.next = first + uint64(len(rs))
			b.appended.Add(uint64(start))
			b.length.Add(int64(start))
			return fmt.Errorf("buffer: append: %w", err)
		}
	}
	b.next = first + uint64(len(rs))
	b.appended.Add(uint64(len(rs)))
	b.length.Add(int64(len(rs)))
	if b.overQuota() {
		b.Maintain()
	}
	return nil
}

// freeCheckEvery bounds how often the buffer asks the kernel for free space.
const freeCheckEvery = 250 * time.Millisecond

// freeNow is the file system's free space, asked at most every
// freeCheckEvery.
func (b *Buffer) freeNow() int64 {
	now := time.Now().UnixNano()
	if now-b.freeAt.Load() > int64(freeCheckEvery) {
		free, err := b.o.freeBytes(b.dir)
		if err != nil {
			free = math.MaxInt64 // cannot tell: do not refuse data on a guess
		}
		b.free.Store(free)
		b.freeAt.Store(now)
	}
	return b.free.Load()
}

// checkFree returns ErrDiskFull when the file system is below the reserve:
// no new readings then.
func (b *Buffer) checkFree() error {
	if b.o.minFree <= 0 {
		return nil
	}
	if free := b.freeNow(); free < b.o.minFree {
		now := time.Now().UnixNano()
		if now-b.refusedAt.Load() > int64(time.Minute) {
			b.refusedAt.Store(now)
			b.log.Error("file system almost full: refusing new readings until space returns", "free_bytes", free, "reserve_bytes", b.o.minFree,
				"refused_so_far", b.refused.Load())
		}
		return fmt.Errorf("%w: %d bytes free, %d reserved", ErrDiskFull, free, b.o.minFree)
	}
	return nil
}

// writeFloor is the free space below which the buffer writes nothing at all
// (deletes, thinning, Badger's flushes): half the reserve. Appends stop at
// the reserve, so the buffer's own growth never reaches it; another
// process filling the disk may. Badger writes through mmapped files and
// dies of SIGBUS when the file system cannot back a page; below the floor
// acked readings are only hidden and deleted once space returns.
func (b *Buffer) writeFloor() int64 { return b.o.minFree / 2 }

// canWrite reports whether the file system has room for maintenance writes.
func (b *Buffer) canWrite() bool { return b.o.minFree <= 0 || b.freeNow() >= b.writeFloor() }

// entrySize estimates what one reading costs in the LSM tree: key, value
// and Badger's per-entry metadata.
func entrySize(valueLen int64) int64 { return keyLen + valueLen + 24 }

// reserve makes sure n more numbers are covered by the state file before
// they are used. Called with mu held.
func (b *Buffer) reserve(n uint64) error {
	need := b.next + n - 1
	if need <= b.state.ReservedThrough {
		return nil
	}
	st := b.state
	st.ReservedThrough = need + b.o.reserve
	if err := st.save(b.stateDir); err != nil {
		return fmt.Errorf("buffer: reserve sequence numbers: %w", err)
	}
	b.state = st
	return nil
}

func validate(r *wire.Reading) error {
	if r == nil {
		return errors.New("nil reading")
	}
	probe := &wire.Batch{DeviceId: "x", Readings: []*wire.Reading{r}}
	if err := wire.ValidateBatch(probe); err != nil {
		return err
	}
	return nil
}

// encode stores a reading in the wire format itself: a one-reading Batch
// carrying the epoch and boot id. No second representation to keep in step.
func encode(epoch uint64, bootID string, r *wire.Reading) ([]byte, error) {
	return proto.Marshal(&wire.Batch{SeqEpoch: epoch, BootId: bootID, Readings: []*wire.Reading{r}})
}

func decode(k, v []byte) (Record, error) {
	var bt wire.Batch
	if err := proto.Unmarshal(v, &bt); err != nil || len(bt.Readings) != 1 {
		return Record{}, fmt.Errorf("buffer: corrupt record at seq %d: %v", seqOf(k), err)
	}
	r := bt.Readings[0]
	r.Seq = seqOf(k)
	return Record{SeqEpoch: bt.SeqEpoch, Seq: r.Seq, BootID: bt.BootId, Reading: r}, nil
}

// Read returns up to max records with seq > after, in sequence order.
func (b *Buffer) Read(after uint64, max int) ([]Record, error) {
	if after == ^uint64(0) {
		return nil, nil
	}
	return b.scan(after+1, ^uint64(0), max)
}

// ReadRange returns the records still held with first <= seq <= last, in
// order, at most max.
func (b *Buffer) ReadRange(first, last uint64, max int) ([]Record, error) {
	return b.scan(first, last, max)
}

// Oldest returns the record with the lowest sequence number.
func (b *Buffer) Oldest() (Record, bool, error) {
	rs, err := b.scan(0, ^uint64(0), 1)
	if err != nil || len(rs) == 0 {
		return Record{}, false, err
	}
	return rs[0], true, nil
}

func (b *Buffer) scan(first, last uint64, limit int) ([]Record, error) {
	if limit <= 0 || first > last {
		return nil, nil
	}
	var out []Record
	pend := b.pending.Load()
	err := b.db.scan(key(first), math.MaxInt, func(k, v []byte) error {
		if seqOf(k) > last || len(out) >= limit {
			return errStopScan
		}
		rec, err := decode(k, v)
		if err != nil {
			return err
		}
		if !pend.has(rec.SeqEpoch, rec.Seq) {
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("buffer: read: %w", err)
	}
	return out, nil
}

// Close syncs, records a clean shutdown and closes the store. Further calls
// return ErrClosed.
func (b *Buffer) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.closed = true
	b.mu.Unlock()
	b.stopBackground()
	var errs []error
	if err := b.db.sync(); err != nil {
		errs = append(errs, fmt.Errorf("buffer: sync at close: %w", err))
	}
	b.freeAt.Store(0) // ask the kernel now
	if b.backend == BackendBadger && !b.canWrite() {
		// Closing Badger flushes its memtable into a new table through
		// mmap: on a full disk, SIGBUS. Everything is synced in its
		// write-ahead log, which the next Open replays.
		return fmt.Errorf("%w: %d bytes free: buffer synced but left open (its write-ahead log is replayed at the next start)",
			ErrDiskFull, b.free.Load())
	}
	if err := b.db.close(); err != nil {
		errs = append(errs, fmt.Errorf("buffer: close %s: %w", b.backend, err))
	}
	if len(errs) == 0 {
		// Only a store that closed cleanly may give back its unused reserve.
		st := b.state
		st.ReservedThrough = b.next - 1
		st.Clean = true
		if err := st.save(b.stateDir); err != nil {
			errs = append(errs, fmt.Errorf("buffer: %w", err))
		}
	}
	return errors.Join(errs...)
}

func dirSize(dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			n += diskUsage(info)
		}
	}
	return n
}
