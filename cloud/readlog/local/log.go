package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/shared/atomicfile"
)

const (
	metaFile   = "readlog.json"
	lockFile   = "LOCK"
	formatV1   = 1
	commitFile = "committed.json"
)

// Log is the local readings log. It is safe for concurrent use.
type Log struct {
	dir    string
	o      settings
	crc    *crc32.Table
	parts  []*partition
	groups map[string]bool
	budget budget
	lock   *os.File

	trimKick  chan struct{}
	persistMu sync.Mutex // serialises writes of committed-offset files
	stop      chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

var _ readlog.Log = (*Log)(nil)

type meta struct {
	Format     int `json:"format"`
	Partitions int `json:"partitions"`
}

// Open opens the log in dir, creating it if needed. It takes an exclusive
// lock on the directory (a second Open, in this or another process, fails),
// recovers each partition's last segment (truncating a torn tail) and
// starts one syncer goroutine per partition and one trimmer.
func Open(dir string, opts ...Option) (*Log, error) {
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case o.partitions < 0:
		return nil, fmt.Errorf("readlog/local: %d partitions", o.partitions)
	case o.segmentBytes < segHeaderLen+frameHeaderLen:
		return nil, fmt.Errorf("readlog/local: segment size %d too small", o.segmentBytes)
	case o.maxRecordBytes <= 0 || o.inflightBytes <= 0:
		return nil, errors.New("readlog/local: record and in-flight bounds must be positive")
	case o.retentionAge < 0 || o.retentionBytes < 0 || o.commitInterval <= 0:
		return nil, errors.New("readlog/local: negative retention or non-positive commit interval")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("readlog/local: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l := &Log{dir: dir, o: o, crc: crc32.MakeTable(crc32.Castagnoli), groups: map[string]bool{}, lock: lock,
		trimKick: make(chan struct{}, 1), stop: make(chan struct{})}
	l.budget.limit = o.inflightBytes
	for _, g := range o.groups {
		if g == "" {
			lock.Close()
			return nil, errors.New("readlog/local: empty consumer group name")
		}
		l.groups[g] = true
	}
	n, err := l.partitionCount()
	if err != nil {
		lock.Close()
		return nil, err
	}
	for i := range n {
		p, err := openPartition(l, i)
		if err != nil {
			l.closeFiles()
			return nil, fmt.Errorf("readlog/local: partition %d: %w", i, err)
		}
		l.parts = append(l.parts, p)
	}
	for _, p := range l.parts {
		l.wg.Add(1)
		go p.runSyncer()
	}
	l.wg.Add(1)
	go l.runTrimmer()
	o.log.Info("readings log open", "dir", dir, "partitions", n, "segment_bytes", o.segmentBytes)
	return l, nil
}

func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("readlog/local: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("readlog/local: %s is in use by another log: %w", dir, err)
	}
	return f, nil
}

// partitionCount reads or creates the log's metadata file.
func (l *Log) partitionCount() (int, error) {
	path := filepath.Join(l.dir, metaFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		n := l.o.partitions
		if n == 0 {
			n = runtime.NumCPU()
		}
		data, _ = json.Marshal(meta{Format: formatV1, Partitions: n})
		if err := atomicfile.Write(path, data); err != nil {
			return 0, fmt.Errorf("readlog/local: %w", err)
		}
		return n, nil
	}
	if err != nil {
		return 0, fmt.Errorf("readlog/local: %w", err)
	}
	var m meta
	if err := json.Unmarshal(data, &m); err != nil || m.Partitions <= 0 {
		return 0, fmt.Errorf("readlog/local: %s is not a readings log description (%v)", path, err)
	}
	if m.Format != formatV1 {
		return 0, fmt.Errorf("readlog/local: %s has format %d, this build reads format %d", path, m.Format, formatV1)
	}
	if l.o.partitions != 0 && l.o.partitions != m.Partitions {
		return 0, fmt.Errorf("readlog/local: %s has %d partitions, %d requested: the count is fixed for the life of a log",
			l.dir, m.Partitions, l.o.partitions)
	}
	return m.Partitions, nil
}

// Partitions is the number of partitions.
func (l *Log) Partitions() int { return len(l.parts) }

func (l *Log) partition(p int) (*partition, error) {
	if p < 0 || p >= len(l.parts) {
		return nil, fmt.Errorf("readlog/local: partition %d out of range [0, %d)", p, len(l.parts))
	}
	return l.parts[p], nil
}

// Append queues the record for partition p; see readlog.Log. It returns an
// error without calling done when the log is closed, ctx ends while waiting
// for in-flight space, p is out of range, the record exceeds
// WithMaxRecordBytes (ErrTooLarge) or an earlier failure left the partition
// unusable. done runs on the partition's syncer goroutine: it must not block
// for long (it holds back the acknowledgements after it) and must not wait
// for another Append to the log (that Append may be waiting for in-flight
// space only this goroutine frees). On failure done gets offset -1.
func (l *Log) Append(ctx context.Context, p int, key, value []byte, done func(offset int64, err error)) error {
	pt, err := l.partition(p)
	if err != nil {
		return err
	}
	if done == nil {
		return errors.New("readlog/local: Append without a done callback")
	}
	if len(key)+len(value) > l.o.maxRecordBytes {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(key)+len(value), l.o.maxRecordBytes)
	}
	size := int64(frameSize(key, value))
	if err := l.budget.acquire(ctx, size, l.stop); err != nil {
		return err
	}
	now := l.o.now().UnixNano()
	pt.mu.Lock()
	if pt.closed || pt.broken != nil {
		err := pt.broken
		pt.mu.Unlock()
		l.budget.release(size)
		if err == nil {
			return readlog.ErrClosed
		}
		return fmt.Errorf("readlog/local: partition %d unusable until reopened: %w", p, err)
	}
	b := pt.cur
	if pt.tail > segHeaderLen && pt.tail+size > l.o.segmentBytes {
		b.rolls = append(b.rolls, roll{at: len(b.buf), base: pt.next})
		pt.tail = segHeaderLen
	}
	b.buf = appendFrame(b.buf, l.crc, pt.next, now, key, value)
	b.dones = append(b.dones, done)
	b.bytes += size
	pt.next++
	pt.tail += size
	pt.mu.Unlock()
	select {
	case pt.kick <- struct{}{}:
	default:
	}
	return nil
}

// Commit records that group has processed partition p below offset. It is
// kept in memory at once (trimming uses it) and written to the partition's
// committed-offset file within the commit interval and at Close.
func (l *Log) Commit(group string, p int, offset int64) error {
	pt, err := l.partition(p)
	if err != nil {
		return err
	}
	if !l.groups[group] {
		return fmt.Errorf("readlog/local: consumer group %q not registered (WithConsumers)", group)
	}
	pt.mu.Lock()
	if pt.closed {
		pt.mu.Unlock()
		return readlog.ErrClosed
	}
	if offset < 0 || offset > pt.next {
		end := pt.next
		pt.mu.Unlock()
		return fmt.Errorf("readlog/local: commit of offset %d outside partition %d's [0, %d]", offset, p, end)
	}
	if pt.committed[group] != offset {
		pt.committed[group] = offset
		pt.commitDirty = true
	}
	pt.mu.Unlock()
	l.kickTrimmer()
	return nil
}

// Close stops the log: appends not yet queued fail with readlog.ErrClosed,
// queued ones are written and acknowledged, committed offsets are saved,
// waiting readers return readlog.ErrClosed. Open readers keep their file
// until their own Close.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		for _, p := range l.parts {
			p.mu.Lock()
			p.closed = true
			p.mu.Unlock()
		}
		close(l.stop)
		l.wg.Wait()
		l.closeErr = l.closeFiles()
		l.o.log.Info("readings log closed", "dir", l.dir)
	})
	return l.closeErr
}

func (l *Log) closeFiles() error {
	var errs []error
	for _, p := range l.parts {
		if p.f != nil {
			errs = append(errs, p.f.Close())
		}
	}
	errs = append(errs, l.lock.Close())
	return errors.Join(errs...)
}

// PartitionStats describes one partition for metrics.
type PartitionStats struct {
	// Start is the first offset still stored; End the next offset to be
	// assigned; Durable the offset below which records are durable.
	Start, End, Durable int64
	// Bytes and Segments are what the partition's segment files hold.
	Bytes    int64
	Segments int
	// Trimmed counts records deleted by retention (age or bytes) before
	// every registered group had committed them, since Open.
	Trimmed int64
	// Syncs counts the batches written and fsynced since Open (each one
	// write call per segment touched and one fsync).
	Syncs int64
	// Committed is each registered group's committed offset.
	Committed map[string]int64
}

// Stats is a snapshot of the log for metrics.
type Stats struct {
	Partitions []PartitionStats
	// InflightBytes is the bytes appended and not yet durable.
	InflightBytes int64
}

// Stats returns a snapshot of every partition.
func (l *Log) Stats() Stats {
	st := Stats{InflightBytes: l.budget.inUse()}
	for _, p := range l.parts {
		p.mu.Lock()
		ps := PartitionStats{Start: p.segs[0].base, End: p.next, Durable: p.durable, Segments: len(p.segs),
			Trimmed: p.trimmed, Syncs: p.syncs, Committed: make(map[string]int64, len(p.committed))}
		for _, s := range p.segs {
			ps.Bytes += s.size
		}
		for g, off := range p.committed {
			ps.Committed[g] = off
		}
		p.mu.Unlock()
		st.Partitions = append(st.Partitions, ps)
	}
	return st
}

// partition is one directory of segments with its append queue and syncer.
type partition struct {
	id  int
	dir string
	l   *Log
	o   *settings
	crc *crc32.Table
	log *slog.Logger

	mu sync.Mutex
	// Append side.
	cur    *batch // records queued for the syncer
	next   int64  // next offset to assign
	tail   int64  // size of the last segment once cur is written
	closed bool
	broken error // a failure that could not be rolled back
	// Durable side, published by the syncer.
	segs      []*segment // oldest first; the last is the active one
	durable   int64
	notify    chan struct{} // closed when durable advances
	trimmed   int64
	syncs     int64
	committed map[string]int64
	// commitDirty: committed changed since it was last written.
	commitDirty bool

	kick chan struct{}
	// Owned by the syncer goroutine.
	f      *os.File // the active segment
	fsize  int64    // bytes written to f
	writes []segWrite
	ups    []segUpdate
}

func openPartition(l *Log, id int) (*partition, error) {
	p := &partition{id: id, dir: filepath.Join(l.dir, strconv.Itoa(id)), l: l, o: &l.o, crc: l.crc,
		log: l.o.log.With("partition", id), cur: &batch{}, notify: make(chan struct{}), kick: make(chan struct{}, 1),
		committed: map[string]int64{}}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return nil, err
	}
	bases, err := listSegments(p.dir)
	if err != nil {
		return nil, err
	}
	if len(bases) == 0 {
		f, err := createSegment(p.dir, 0)
		if err != nil {
			return nil, err
		}
		// The new partition directory's entry must be durable too.
		if err := errors.Join(f.Sync(), syncDir(p.dir), syncDir(l.dir)); err != nil {
			f.Close()
			return nil, err
		}
		f.Close()
		bases = []int64{0}
	}
	for _, base := range bases[:len(bases)-1] {
		s, err := closedSegment(p.dir, base)
		if err != nil {
			return nil, err
		}
		p.segs = append(p.segs, s)
	}
	last := bases[len(bases)-1]
	f, err := os.OpenFile(segmentPath(p.dir, last), os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	seg, next, err := p.recoverSegment(f, last)
	if err != nil {
		f.Close()
		return nil, err
	}
	p.segs = append(p.segs, seg)
	p.f, p.fsize, p.tail, p.next, p.durable = f, seg.size, seg.size, next, next
	p.cur.first = next
	if err := p.loadCommitted(); err != nil {
		f.Close()
		return nil, err
	}
	return p, nil
}

// closedSegment describes a segment that is not the last one, from its
// header and file attributes.
func closedSegment(dir string, base int64) (*segment, error) {
	f, err := os.Open(segmentPath(dir, base))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	torn, err := checkHeader(f, st.Size())
	if err != nil {
		return nil, err
	}
	if torn {
		return nil, fmt.Errorf("%s: header missing in a closed segment", f.Name())
	}
	return &segment{base: base, path: f.Name(), size: st.Size(), lastTime: st.ModTime().UnixNano()}, nil
}
