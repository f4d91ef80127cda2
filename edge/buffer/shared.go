package buffer

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridedge/gridedge/shared/atomicfile"
	"github.com/gridedge/gridedge/shared/diskfree"
)

// Backends of buffers opened in a Shared store (reported by
// Buffer.Backend; not choices for a gateway's configuration).
const (
	// BackendShared is a namespace of a Shared store in SharedJournal mode.
	BackendShared Backend = "shared"
	// BackendMemory is a namespace of a Shared store in SharedMemory mode.
	BackendMemory Backend = "memory"
)

// SharedMode says when a Shared store writes to disk.
type SharedMode int

const (
	// SharedJournal appends every write of every namespace to one journal
	// file and fsyncs it once per sync interval for all of them (group
	// commit). A crash loses at most the writes of the last interval, the
	// same bound as a gateway's own buffer.
	SharedJournal SharedMode = iota
	// SharedMemory writes nothing while running; Close writes one snapshot
	// of every namespace, which the next OpenShared loads. A clean stop and
	// start loses nothing; a crash loses every reading not yet acked.
	SharedMemory
)

func (m SharedMode) String() string {
	if m == SharedMemory {
		return "memory"
	}
	return "journal"
}

// File names inside a Shared store's directory.
const (
	sharedJournalFile  = "journal"
	sharedSnapshotFile = "snapshot"
)

// compactMinBytes is the journal size below which it is never rewritten;
// above it, it is rewritten once it exceeds compactFactor × the live data.
const (
	compactMinBytes = 64 << 20
	compactFactor   = 4
)

// Shared is one store holding the buffers of many devices, each in its own
// namespace (the simulator's virtual meters): one directory, one file, one
// fsync per sync interval for all of them, instead of a storage engine with
// its own caches, memtables, files and goroutines per device. A buffer opened
// with WithShared keeps every guarantee of Buffer (sequence numbers, quota,
// ack-driven deletion); the readings of every namespace are held in memory
// (a namespace costs what its unacked readings take), and the mode decides
// what reaches disk.
//
// Bounds: memory is the live readings of all namespaces (each buffer's quota
// bounds its own); in SharedJournal mode the journal is rewritten with only
// the live readings when it passes max(64 MiB, 4 × live data), so it stays
// within that; writes are refused with ErrDiskFull while the file system has
// less free space than the reserve (WithSharedMinFree, default 64 MiB).
//
// All methods are safe for concurrent use.
type Shared struct {
	dir          string
	mode         SharedMode
	log          *slog.Logger
	syncInterval time.Duration
	minFree      int64
	// compactMin is compactMinBytes; tests lower it.
	compactMin int64

	// mu guards spaces, the journal writer and closed; it is taken before
	// a namespace's lock.
	mu     sync.Mutex
	spaces map[string]*namespace
	closed bool
	// done mirrors closed for the lock-free checks of namespaces.
	done atomic.Bool
	// Journal mode only.
	file    *os.File
	enc     *journalEncoder
	live    atomic.Int64
	compact chan struct{}
	// syncMu orders syncs and compactions; synced is the journal offset
	// known durable. Both guarded by syncMu.
	syncMu sync.Mutex
	synced int64

	free   atomic.Int64
	freeAt atomic.Int64

	stop chan struct{}
	wg   sync.WaitGroup
}

// SharedOption adjusts OpenShared.
type SharedOption func(*Shared)

// WithSharedMode selects journal (default) or memory mode.
func WithSharedMode(m SharedMode) SharedOption { return func(s *Shared) { s.mode = m } }

// WithSharedSyncInterval sets how often the journal is fsynced (default 1 s).
func WithSharedSyncInterval(d time.Duration) SharedOption {
	return func(s *Shared) { s.syncInterval = d }
}

// WithSharedMinFree sets the free space the file system must keep; below it
// writes fail with ErrDiskFull (default 64 MiB; journal mode only).
func WithSharedMinFree(bytes int64) SharedOption { return func(s *Shared) { s.minFree = bytes } }

// WithSharedLogger sets the logger.
func WithSharedLogger(l *slog.Logger) SharedOption { return func(s *Shared) { s.log = l } }

// OpenShared opens (creating if needed) the shared store in dir and loads
// what the previous process left: the journal (up to the last intact
// record: a crash can tear only its tail) or the snapshot. Close it after
// every buffer opened in it.
func OpenShared(dir string, opts ...SharedOption) (*Shared, error) {
	s := &Shared{dir: dir, log: slog.Default(), syncInterval: time.Second, minFree: 64 << 20,
		compactMin: compactMinBytes,
		spaces:     map[string]*namespace{}, compact: make(chan struct{}, 1), stop: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	if dir == "" {
		return nil, errors.New("buffer: shared store: dir must be set")
	}
	if s.syncInterval <= 0 {
		return nil, fmt.Errorf("buffer: shared store: sync interval must be > 0, got %v", s.syncInterval)
	}
	s.log = s.log.With("component", "buffer", "backend", string(s.backend()))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("buffer: shared store: %w", err)
	}
	name := sharedSnapshotFile
	if s.mode == SharedJournal {
		name = sharedJournalFile
	}
	if err := s.load(filepath.Join(dir, name)); err != nil {
		return nil, fmt.Errorf("buffer: shared store: %w", err)
	}
	if s.mode == SharedJournal {
		// Start from a clean file holding just the live entries: this also
		// cuts a torn tail.
		s.syncMu.Lock()
		err := s.rewriteJournal()
		s.syncMu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("buffer: shared store: %w", err)
		}
		s.wg.Add(1)
		go s.loop()
	}
	return s, nil
}

func (s *Shared) backend() Backend {
	if s.mode == SharedMemory {
		return BackendMemory
	}
	return BackendShared
}

// load replays the file at path into the namespaces.
func (s *Shared) load(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	_, torn, err := replayJournal(f, func(op byte, ns string, key, val []byte) {
		sp := s.spaces[ns]
		if sp == nil {
			sp = &namespace{sh: s, name: ns}
			s.spaces[ns] = sp
		}
		before := sp.t.bytes
		if op == opPut {
			sp.t.put(string(key), val)
		} else {
			sp.t.remove([][]byte{key})
		}
		s.live.Add(sp.t.bytes - before)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if torn {
		s.log.Warn("shared store: ignoring a torn tail (the process stopped mid-write)", "file", path)
	}
	return nil
}

// rewriteJournal writes every live entry to a new journal and makes it the
// journal: on return it is durable and the writer appends to it. Called
// with syncMu held (so no sync reports a write durable that sits in a file
// not yet renamed into place), and without mu.
func (s *Shared) rewriteJournal() error {
	path := filepath.Join(s.dir, sharedJournalFile)
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	enc := &journalEncoder{w: bufio.NewWriterSize(f, 256<<10)}
	s.mu.Lock()
	_, err = enc.w.WriteString(journalMagic)
	enc.written = int64(len(journalMagic))
	if err == nil {
		err = s.writeLive(enc)
	}
	if err == nil {
		err = enc.w.Flush()
	}
	if err != nil {
		s.mu.Unlock()
		f.Close()
		os.Remove(tmp)
		return err
	}
	old := s.file
	s.file, s.enc = f, enc
	// What the rewrite wrote; appends after the unlock count on top of it
	// and become durable with the next Sync.
	rewritten := enc.written
	s.mu.Unlock()
	// Writes made from here on go to the new file; nobody is told they are
	// durable before the rename below (syncMu is held).
	if old != nil {
		_ = old.Close()
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(s.dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return err
		}
	}
	s.synced = rewritten
	return nil
}

// writeLive writes a put for every live entry, namespaces in name order.
// Called with mu held.
func (s *Shared) writeLive(enc *journalEncoder) error {
	names := make([]string, 0, len(s.spaces))
	for n, sp := range s.spaces {
		if sp.t.len() > 0 || sp.open.Load() {
			names = append(names, n)
		} else {
			delete(s.spaces, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		sp := s.spaces[n]
		sp.mu.Lock()
		for _, e := range sp.t.entries {
			if err := enc.record(opPut, n, []byte(e.key), e.val); err != nil {
				sp.mu.Unlock()
				return err
			}
		}
		sp.mu.Unlock()
	}
	return nil
}

// loop group-commits the journal every sync interval and rewrites it when
// it has grown past its bound.
func (s *Shared) loop() {
	defer s.wg.Done()
	t := time.NewTicker(s.syncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.Sync(); err != nil {
				s.log.Error("shared store: sync failed", "err", err)
			}
		case <-s.compact:
			s.syncMu.Lock()
			before := s.journalBytes()
			err := s.rewriteJournal()
			s.syncMu.Unlock()
			if err != nil {
				s.log.Error("shared store: rewriting the journal failed", "err", err)
				continue
			}
			s.log.Debug("shared store: journal rewritten", "from_bytes", before, "to_bytes", s.journalBytes())
		}
	}
}

func (s *Shared) journalBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enc == nil {
		return 0
	}
	return s.enc.written
}

// Sync makes every write applied so far durable (journal mode; a no-op in
// memory mode). Concurrent callers share one fsync.
func (s *Shared) Sync() error {
	if s.mode == SharedMemory {
		return nil
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	target := s.enc.written
	err := s.enc.w.Flush()
	f := s.file
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if target <= s.synced {
		return nil
	}
	if err := f.Sync(); err != nil {
		return err
	}
	s.synced = target
	return nil
}

// Stats are a Shared store's figures.
type SharedStats struct {
	Namespaces   int   // namespaces holding readings or open
	LiveBytes    int64 // keys and values held, all namespaces
	JournalBytes int64 // the journal's size (journal mode)
}

// Stats returns the store's figures.
func (s *Shared) Stats() SharedStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SharedStats{Namespaces: len(s.spaces), LiveBytes: s.live.Load()}
	if s.enc != nil {
		st.JournalBytes = s.enc.written
	}
	return st
}

// Close stops the store: in journal mode it syncs and closes the journal,
// in memory mode it writes the snapshot (atomically: the previous one stays
// until the new one is complete). Buffers still open in it fail afterwards
// with ErrClosed; close them first.
func (s *Shared) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	var open []string
	for n, sp := range s.spaces {
		if sp.open.Load() {
			open = append(open, n)
		}
	}
	s.mu.Unlock()
	var errs []error
	if len(open) > 0 {
		sort.Strings(open)
		errs = append(errs, fmt.Errorf("buffer: shared store closed with %d buffers still open (%s)", len(open), strings.Join(open[:min(len(open), 5)], ", ")))
	}
	close(s.stop)
	s.wg.Wait()
	if s.mode == SharedJournal {
		if err := s.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("buffer: shared store: sync at close: %w", err))
		}
		s.mu.Lock()
		s.closed = true
		s.done.Store(true)
		if err := s.file.Close(); err != nil {
			errs = append(errs, fmt.Errorf("buffer: shared store: %w", err))
		}
		s.mu.Unlock()
		return errors.Join(errs...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.done.Store(true)
	var snap strings.Builder
	enc := &journalEncoder{w: bufio.NewWriter(&snap)}
	_, err := enc.w.WriteString(journalMagic)
	if err == nil {
		err = s.writeLive(enc)
	}
	if err == nil {
		err = enc.w.Flush()
	}
	if err == nil {
		err = atomicfile.Write(filepath.Join(s.dir, sharedSnapshotFile), []byte(snap.String()))
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("buffer: shared store: snapshot: %w", err))
	}
	return errors.Join(errs...)
}

// open returns the namespace's store for a buffer. A namespace is open in
// one buffer at a time.
func (s *Shared) open(name string) (store, error) {
	if name == "" {
		return nil, errors.New("shared store: empty namespace")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	sp := s.spaces[name]
	if sp == nil {
		sp = &namespace{sh: s, name: name}
		s.spaces[name] = sp
	}
	if sp.open.Load() {
		return nil, fmt.Errorf("shared store: namespace %q is already open", name)
	}
	sp.open.Store(true)
	return sp, nil
}

// checkFree refuses writes while the file system is almost full.
func (s *Shared) checkFree() error {
	if s.mode == SharedMemory || s.minFree <= 0 {
		return nil
	}
	now := time.Now().UnixNano()
	if now-s.freeAt.Load() > int64(freeCheckEvery) {
		free, err := diskfree.Available(s.dir)
		if err != nil {
			free = 1<<63 - 1 // cannot tell: do not refuse data on a guess
		}
		s.free.Store(free)
		s.freeAt.Store(now)
	}
	if free := s.free.Load(); free < s.minFree {
		return fmt.Errorf("%w: %d bytes free, %d reserved", ErrDiskFull, free, s.minFree)
	}
	return nil
}

// namespace is one buffer's part of a Shared store.
type namespace struct {
	sh   *Shared
	name string
	// open is set and cleared under sh.mu; read without it.
	open atomic.Bool
	// mu guards t; taken after sh.mu.
	mu sync.Mutex
	t  memTable
}

// syncsItself tells Open that the store commits on its own schedule, so the
// buffer runs no sync loop of its own.
func (n *namespace) syncsItself() {}

func (n *namespace) apply(puts []kv, deletes [][]byte) error {
	s := n.sh
	if len(puts) > 0 {
		if err := s.checkFree(); err != nil {
			return err
		}
	}
	if s.mode == SharedMemory {
		if n.closed() {
			return ErrClosed
		}
		n.mu.Lock()
		n.applyLocked(puts, deletes)
		n.mu.Unlock()
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n.closed() {
		return ErrClosed
	}
	for _, p := range puts {
		if err := s.enc.record(opPut, n.name, p.key, p.val); err != nil {
			return fmt.Errorf("shared store: %w", err)
		}
	}
	for _, k := range deletes {
		if err := s.enc.record(opDelete, n.name, k, nil); err != nil {
			return fmt.Errorf("shared store: %w", err)
		}
	}
	n.mu.Lock()
	n.applyLocked(puts, deletes)
	n.mu.Unlock()
	if w := s.enc.written; w > s.compactMin && w > compactFactor*s.live.Load() {
		select {
		case s.compact <- struct{}{}:
		default:
		}
	}
	return nil
}

func (n *namespace) applyLocked(puts []kv, deletes [][]byte) {
	before := n.t.bytes
	for _, p := range puts {
		n.t.put(string(p.key), p.val)
	}
	n.t.remove(deletes)
	n.sh.live.Add(n.t.bytes - before)
}

func (n *namespace) scan(from []byte, limit int, fn func(k, v []byte) error) error {
	if limit <= 0 {
		return nil
	}
	if n.closed() {
		return ErrClosed
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.t.scan(from, limit, fn)
}

func (n *namespace) sync() error {
	err := n.sh.Sync()
	if errors.Is(err, ErrClosed) {
		return fmt.Errorf("shared store: %w", err)
	}
	return err
}

// diskBytes is the namespace's share of the store: its live keys and values.
func (n *namespace) diskBytes() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.t.bytes
}

func (n *namespace) maintain() {}

// liveShare is all of the quota: the journal is rewritten with only live
// entries, so nothing but them accumulates per namespace.
func (n *namespace) liveShare() float64 { return 1 }

// close releases the namespace; its readings stay in the store for the next
// buffer opened on it.
func (n *namespace) close() error {
	n.sh.mu.Lock()
	defer n.sh.mu.Unlock()
	if !n.open.Load() {
		return ErrClosed
	}
	n.open.Store(false)
	return nil
}

// closed reports whether the namespace or its store was closed.
func (n *namespace) closed() bool { return n.sh.done.Load() || !n.open.Load() }

// WithShared makes Open keep the buffer in namespace of the shared store sh
// instead of a storage engine of its own in dir (dir is still created and
// must still differ from the state directory, which keeps the sequence
// state as for every buffer). The store's mode decides durability; see
// SharedMode.
func WithShared(sh *Shared, namespace string) Option {
	return func(s *settings) { s.shared, s.namespace = sh, namespace }
}
