package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// FeedKind says what a feed entry carries; its payload is the JSON the store
// keeps for that data class (WindowResult, LateReading, DeviceInfo, Status).
type FeedKind byte

// Feed entry kinds.
const (
	FeedResult FeedKind = 'r'
	FeedLate   FeedKind = 'l'
	FeedDevice FeedKind = 'd'
	FeedStatus FeedKind = 's'
	// FeedReading carries a stored raw reading (RawReading), only with
	// WithFeedReadings.
	FeedReading FeedKind = 'w'
)

// RawReading is a stored raw reading as the feed carries it.
type RawReading struct {
	Device      string    `json:"device"`
	Channel     string    `json:"channel"`
	Quantity    string    `json:"quantity"`
	Time        time.Time `json:"time"`
	Value       float64   `json:"value"`
	TimeQuality string    `json:"time_quality"`
	TimeErrorNs int64     `json:"time_error_ns,omitempty"`
	SeqEpoch    uint64    `json:"seq_epoch,string"`
	Seq         uint64    `json:"seq"`
	Received    time.Time `json:"received"`
	// Flags say why it was kept out of the windows (future, implausible).
	Flags []string `json:"flags,omitempty"`
}

// FeedEntry is one record of the results feed of a partition.
type FeedEntry struct {
	// Seq numbers the partition's entries from 0, without gaps, in commit
	// order. Entries of a resynchronisation (FeedResync) have Seq 0.
	Seq  uint64
	Kind FeedKind
	// At is when the commit that wrote the entry was made.
	At time.Time
	// Payload is the entry's JSON; it is the caller's to keep.
	Payload []byte
}

// FeedTrimmedError says a read asked for entries the feed no longer holds:
// retention deleted them before the reader had them.
type FeedTrimmedError struct {
	Partition int
	Requested uint64
	First     uint64
}

func (e *FeedTrimmedError) Error() string {
	return fmt.Sprintf("store: feed partition %d: entries from %d requested, the feed starts at %d (trimmed by retention)",
		e.Partition, e.Requested, e.First)
}

// FeedRetention bounds the feed of each partition. Entries below the lowest
// registered cursor are deleted as soon as that cursor passes them; beyond
// that the oldest entries go when a partition's feed holds more than
// MaxBytes, or when they are older than MaxAge (both 0: unbounded).
type FeedRetention struct {
	MaxBytes int64
	MaxAge   time.Duration
}

// FeedStats describes a partition's feed.
type FeedStats struct {
	First, Next uint64 // entries [First, Next) are held
	Bytes       int64  // their size (keys and values)
	// Trimmed counts entries deleted by retention before every registered
	// cursor passed them (since the store was opened).
	Trimmed uint64
}

// feedPart is the feed state of one partition. mu is held from sequence
// assignment through the commit of a batch carrying entries, so sequence
// numbers are contiguous in commit order however many writers commit to
// the partition.
type feedPart struct {
	mu      sync.Mutex
	st      FeedStats
	changed chan struct{} // closed and replaced when Next moves
}

// feedState is the store's feed bookkeeping.
type feedState struct {
	on       bool
	readings bool
	ret      FeedRetention
	mu       sync.Mutex
	ps       map[int]*feedPart
}

// WithFeed turns the results feed on: every PutOutput, PutDevice and
// PutStatus also appends feed entries to its partition, in the same batch,
// for sinks to follow (cloud/feed). Off (the default) writes none.
func WithFeed(r FeedRetention) Option {
	return func(s *settings) { s.feed, s.feedRet = true, r }
}

// WithFeedReadings also feeds every stored raw reading (Batch.FeedReadings;
// with WithFeed only).
func WithFeedReadings() Option { return func(s *settings) { s.feedReadings = true } }

// FeedsReadings says whether raw readings go to the feed: a writer
// collects them for Batch.FeedReadings only then.
func (s *Store) FeedsReadings() bool { return s.feed.on && s.feed.readings }

// FeedReadings appends raw readings stored by this batch to the feed (when
// the store FeedsReadings).
func (b *Batch) FeedReadings(rs []RawReading) error {
	if !b.s.FeedsReadings() {
		return nil
	}
	for i := range rs {
		data, err := json.Marshal(&rs[i])
		if err != nil {
			return fmt.Errorf("store: encode reading: %w", err)
		}
		b.appendFeed(FeedReading, data)
	}
	return nil
}

// feedKey: F part(2) seq(8). Feed values: kind(1) at(8) payload. The
// partition's next sequence is also kept under f part(2), so it survives a
// trim of every entry.
func feedKey(p int, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(partitionKey(prefixFeed, p), seq)
}

// feedCursorKey: G sink 0 part(2).
func feedCursorKey(sink string, p int) []byte {
	k := append([]byte{prefixFeedCursor}, sink...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint16(k, uint16(p))
}

// initFeed reads each partition's feed bounds and size.
func (s *Store) initFeed() error {
	s.feed.ps = map[int]*feedPart{}
	err := s.scan([]byte{prefixFeedNext}, func(k, v []byte) error {
		if len(k) != 3 || len(v) != 8 {
			return errBadKey
		}
		fp := s.feedPart(int(binary.BigEndian.Uint16(k[1:])))
		fp.st.Next = binary.BigEndian.Uint64(v)
		fp.st.First = fp.st.Next
		return nil
	})
	if err != nil {
		return err
	}
	seen := map[int]bool{}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixFeed}, UpperBound: []byte{prefixFeed + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 11 {
			return errBadKey
		}
		p, seq := int(binary.BigEndian.Uint16(k[1:])), binary.BigEndian.Uint64(k[3:])
		fp := s.feedPart(p)
		if !seen[p] {
			seen[p], fp.st.First = true, seq
		}
		fp.st.Next = max(fp.st.Next, seq+1)
		fp.st.Bytes += int64(len(k) + len(it.Value()))
	}
	return it.Error()
}

// feedPart returns partition p's feed state, creating it.
func (s *Store) feedPart(p int) *feedPart {
	s.feed.mu.Lock()
	defer s.feed.mu.Unlock()
	fp := s.feed.ps[p]
	if fp == nil {
		fp = &feedPart{changed: make(chan struct{})}
		s.feed.ps[p] = fp
	}
	return fp
}

// FeedOn says whether the store writes the results feed.
func (s *Store) FeedOn() bool { return s.feed.on }

// appendFeed queues a feed entry of the batch (when the feed is on).
func (b *Batch) appendFeed(kind FeedKind, payload []byte) {
	if !b.s.feed.on {
		return
	}
	b.feed = append(b.feed, batchFeedEntry{kind, payload})
}

type batchFeedEntry struct {
	kind    FeedKind
	payload []byte
}

// commitFeed commits the batch with its feed entries numbered after the
// partition's last entry.
func (b *Batch) commitFeed() error {
	fp := b.s.feedPart(b.p)
	fp.mu.Lock()
	at := binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
	seq := fp.st.Next
	var size int64
	val := make([]byte, 0, 256)
	for _, e := range b.feed {
		k := feedKey(b.p, seq)
		val = append(append(append(val[:0], byte(e.kind)), at...), e.payload...)
		b.set(k, val)
		size += int64(len(k) + len(val))
		seq++
	}
	b.set(partitionKey(prefixFeedNext, b.p), binary.BigEndian.AppendUint64(nil, seq))
	err := b.b.Commit(b.s.wo)
	if err == nil {
		fp.st.Next = seq
		fp.st.Bytes += size
		close(fp.changed)
		fp.changed = make(chan struct{})
	}
	over := b.s.feed.ret.MaxBytes > 0 && fp.st.Bytes > b.s.feed.ret.MaxBytes
	fp.mu.Unlock()
	if over {
		if terr := b.s.trimFeedRetention(b.p, time.Now()); terr != nil {
			b.s.log.Warn("store: feed retention", "partition", b.p, "err", terr)
		}
	}
	return err
}

// FeedStats returns partition p's feed bounds and size.
func (s *Store) FeedStats(p int) FeedStats {
	fp := s.feedPart(p)
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return fp.st
}

// FeedWait returns a channel that is closed once partition p's feed holds
// an entry at or beyond seq (at once if it already does). It costs nothing
// while nothing is committed.
func (s *Store) FeedWait(p int, seq uint64) <-chan struct{} {
	fp := s.feedPart(p)
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.st.Next > seq {
		c := make(chan struct{})
		close(c)
		return c
	}
	return fp.changed
}

// FeedRead returns partition p's entries from seq from on, at most max
// entries (0: 1,000) and about maxBytes of payload (0: 4 MiB; at least one
// entry). It returns a *FeedTrimmedError when from is below the first entry
// held.
func (s *Store) FeedRead(p int, from uint64, max int, maxBytes int) ([]FeedEntry, error) {
	if max <= 0 {
		max = 1000
	}
	if maxBytes <= 0 {
		maxBytes = 4 << 20
	}
	st := s.FeedStats(p)
	if from < st.First {
		return nil, &FeedTrimmedError{Partition: p, Requested: from, First: st.First}
	}
	if from >= st.Next {
		return nil, nil
	}
	lo := feedKey(p, from)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: feedKey(p, st.Next)})
	if err != nil {
		return nil, fmt.Errorf("store: feed partition %d: %w", p, err)
	}
	defer it.Close()
	var out []FeedEntry
	size := 0
	want := from
	for it.First(); it.Valid() && len(out) < max && (size < maxBytes || len(out) == 0); it.Next() {
		seq := binary.BigEndian.Uint64(it.Key()[3:])
		if seq != want {
			// A trim ran between the bounds check and the read.
			return nil, &FeedTrimmedError{Partition: p, Requested: want, First: seq}
		}
		v := it.Value()
		if len(v) < 9 {
			return nil, fmt.Errorf("store: feed partition %d entry %d: %w", p, seq, errBadKey)
		}
		out = append(out, FeedEntry{Seq: seq, Kind: FeedKind(v[0]),
			At: time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9]))).UTC(), Payload: bytes.Clone(v[9:])})
		size += len(v)
		want++
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("store: feed partition %d: %w", p, err)
	}
	if len(out) == 0 {
		// Everything from `from` was deleted meanwhile.
		if st2 := s.FeedStats(p); from < st2.First {
			return nil, &FeedTrimmedError{Partition: p, Requested: from, First: st2.First}
		}
	}
	return out, nil
}

// SetFeedCursor records that sink has everything of partition p's feed
// below next (durably on its side), and deletes the entries every
// registered sink has. A sink registers by setting its cursor; the feed
// keeps entries from the lowest registered cursor of each partition, up to
// the retention.
func (s *Store) SetFeedCursor(sink string, p int, next uint64) error {
	if sink == "" || bytes.IndexByte([]byte(sink), 0) >= 0 {
		return fmt.Errorf("store: feed cursor: bad sink name %q", sink)
	}
	if err := s.db.Set(feedCursorKey(sink, p), binary.BigEndian.AppendUint64(nil, next), pebble.NoSync); err != nil {
		return fmt.Errorf("store: feed cursor: %w", err)
	}
	floor, ok, err := s.feedFloor(p)
	if err != nil || !ok {
		return err
	}
	return s.trimFeedBelow(p, floor, false)
}

// FeedCursors returns the registered cursors of partition p by sink name.
func (s *Store) FeedCursors(p int) (map[string]uint64, error) {
	out := map[string]uint64{}
	err := s.scan([]byte{prefixFeedCursor}, func(k, v []byte) error {
		if len(k) < 4 || len(v) != 8 {
			return errBadKey
		}
		if int(binary.BigEndian.Uint16(k[len(k)-2:])) == p {
			out[string(k[1:len(k)-3])] = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return out, err
}

// DropFeedCursor unregisters sink from every partition: the feed no longer
// keeps entries for it.
func (s *Store) DropFeedCursor(sink string) error {
	k := append([]byte{prefixFeedCursor}, sink...)
	k = append(k, 0)
	if err := s.db.DeleteRange(k, prefixEnd(k), pebble.Sync); err != nil {
		return fmt.Errorf("store: drop feed cursor: %w", err)
	}
	return nil
}

// feedFloor is the lowest registered cursor of partition p; without any,
// ok is false and nothing is kept for sinks (only the retention applies).
func (s *Store) feedFloor(p int) (floor uint64, ok bool, err error) {
	cs, err := s.FeedCursors(p)
	if err != nil {
		return 0, false, err
	}
	for _, c := range cs {
		if !ok || c < floor {
			floor, ok = c, true
		}
	}
	return floor, ok, nil
}

// TrimFeed applies the feed retention to every partition: entries below
// the lowest registered cursor (everything, where no sink is registered or
// the store was opened without the feed), then the byte and age bounds.
func (s *Store) TrimFeed(now time.Time) error {
	s.feed.mu.Lock()
	parts := make([]int, 0, len(s.feed.ps))
	for p := range s.feed.ps {
		parts = append(parts, p)
	}
	s.feed.mu.Unlock()
	var errs []error
	for _, p := range parts {
		floor, ok, err := s.feedFloor(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok || !s.feed.on {
			// Nothing registered, or the feed is off (no sink configured any
			// more): nothing is kept for sinks.
			floor = s.FeedStats(p).Next
		}
		if err := s.trimFeedBelow(p, floor, false); err != nil {
			errs = append(errs, err)
		}
		if err := s.trimFeedRetention(p, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// trimFeedRetention deletes partition p's oldest entries while the feed is
// over its byte bound (down to 90% of it, so trims are not one entry at a
// time) or they are older than its age bound.
func (s *Store) trimFeedRetention(p int, now time.Time) error {
	r := s.feed.ret
	if r.MaxBytes <= 0 && r.MaxAge <= 0 {
		return nil
	}
	st := s.FeedStats(p)
	excess := int64(0)
	if r.MaxBytes > 0 && st.Bytes > r.MaxBytes {
		excess = st.Bytes - r.MaxBytes*9/10
	}
	cutAge := int64(0)
	if r.MaxAge > 0 {
		cutAge = now.Add(-r.MaxAge).UnixNano()
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: feedKey(p, st.First), UpperBound: feedKey(p, st.Next)})
	if err != nil {
		return err
	}
	cut := st.First
	for it.First(); it.Valid(); it.Next() {
		v := it.Value()
		old := len(v) >= 9 && int64(binary.BigEndian.Uint64(v[1:9])) < cutAge
		if excess <= 0 && !old {
			break
		}
		excess -= int64(len(it.Key()) + len(v))
		cut = binary.BigEndian.Uint64(it.Key()[3:]) + 1
	}
	err = it.Error()
	it.Close()
	if err != nil {
		return err
	}
	return s.trimFeedBelow(p, cut, true)
}

// trimFeedBelow deletes partition p's entries below seq. byRetention says
// the deletion may pass registered cursors (it is counted as Trimmed for
// those it passes).
func (s *Store) trimFeedBelow(p int, seq uint64, byRetention bool) error {
	fp := s.feedPart(p)
	fp.mu.Lock()
	defer fp.mu.Unlock()
	seq = min(seq, fp.st.Next)
	if seq <= fp.st.First {
		return nil
	}
	lo, hi := feedKey(p, fp.st.First), feedKey(p, seq)
	var size int64
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		size += int64(len(it.Key()) + len(it.Value()))
	}
	err = it.Error()
	it.Close()
	if err != nil {
		return err
	}
	if err := s.db.DeleteRange(lo, hi, pebble.NoSync); err != nil {
		return fmt.Errorf("store: trim feed partition %d: %w", p, err)
	}
	if byRetention {
		if floor, ok, _ := s.feedFloor(p); ok && floor < seq {
			fp.st.Trimmed += seq - max(floor, fp.st.First)
		}
	}
	fp.st.First = seq
	fp.st.Bytes = max(fp.st.Bytes-size, 0)
	return nil
}
