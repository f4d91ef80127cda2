package feed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/cloud/store"
)

// ErrTrimmed is wrapped by Read when the cursor asked for is not in the
// feed: retention deleted those records before the sink had them, or the
// cursor belongs to another store's feed (it is beyond this one's end). The
// sink must resynchronise (Resync) and go on from the sequence it returns.
var ErrTrimmed = errors.New("feed: cursor not in the feed")

// Source is a results feed sinks follow.
type Source interface {
	// ID names the feed's store: a sink keeps one cursor per (ID, partition).
	ID() string
	// Partitions is the number of feed partitions (the readings log's).
	Partitions() int
	// Next is partition p's next sequence: the records below it are
	// committed (those from the first held on can be read).
	Next(p int) uint64
	// Read returns partition p's records from sequence from on (at most max,
	// 0 meaning 1,000; possibly none). Its error wraps ErrTrimmed when from
	// is not in the feed.
	Read(p int, from uint64, max int) ([]Record, error)
	// Wait returns a channel closed once partition p holds a record at or
	// beyond from (at once when it already does); nothing runs meanwhile.
	Wait(p int, from uint64) <-chan struct{}
	// Commit registers sink's cursor in partition p: it has made every
	// record below next durable. The feed keeps records from the lowest
	// registered cursor on (within its retention).
	Commit(sink string, p int, next uint64) error
	// Resync calls fn with the current state of partition p's devices
	// (results at their highest revision, late readings, device counters,
	// statuses; raw readings if so configured; records marked Resync) from
	// one consistent snapshot, and
	// returns the sequence to follow the feed from afterwards.
	Resync(ctx context.Context, p int, fn func(*Record) error) (uint64, error)
}

// Local is the feed of an embedded store opened WithFeed.
type Local struct {
	st    *store.Store
	parts int
	// readingsAge, when positive, makes Resync include the stored raw
	// readings of that age at most.
	readingsAge time.Duration
	now         func() time.Time
}

// LocalOption changes a Local.
type LocalOption func(*Local)

// WithResyncReadings makes Resync also send the raw readings stored in the
// last age (as kind reading records), for a sink that keeps raw readings
// that long. The store must feed raw readings (store.WithFeedReadings).
func WithResyncReadings(age time.Duration) LocalOption {
	return func(l *Local) { l.readingsAge = age }
}

// WithLocalClock replaces time.Now (tests).
func WithLocalClock(now func() time.Time) LocalOption { return func(l *Local) { l.now = now } }

// NewLocal returns the feed of st, whose readings log has partitions
// partitions.
func NewLocal(st *store.Store, partitions int, opts ...LocalOption) *Local {
	l := &Local{st: st, parts: partitions, now: time.Now}
	for _, o := range opts {
		o(l)
	}
	return l
}

// ID implements Source.
func (l *Local) ID() string { return l.st.ID() }

// Partitions implements Source.
func (l *Local) Partitions() int { return l.parts }

// Next implements Source.
func (l *Local) Next(p int) uint64 { return l.st.FeedStats(p).Next }

// Read implements Source.
func (l *Local) Read(p int, from uint64, max int) ([]Record, error) {
	if next := l.st.FeedStats(p).Next; from > next {
		return nil, fmt.Errorf("%w: partition %d: cursor %d is beyond the feed's end %d (another store's cursor)", ErrTrimmed, p, from, next)
	}
	es, err := l.st.FeedRead(p, from, max, 0)
	var te *store.FeedTrimmedError
	if errors.As(err, &te) {
		return nil, fmt.Errorf("%w: %w", ErrTrimmed, err)
	}
	if err != nil {
		return nil, err
	}
	out := make([]Record, len(es))
	for i, e := range es {
		if out[i], err = FromEntry(l.st.ID(), p, e); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Wait implements Source.
func (l *Local) Wait(p int, from uint64) <-chan struct{} { return l.st.FeedWait(p, from) }

// Commit implements Source.
func (l *Local) Commit(sink string, p int, next uint64) error {
	return l.st.SetFeedCursor(sink, p, next)
}

// Resync implements Source.
func (l *Local) Resync(ctx context.Context, p int, fn func(*Record) error) (uint64, error) {
	owns := func(device string) bool { return readlog.PartitionFor([]byte(device), l.parts) == p }
	var since time.Time
	if l.readingsAge > 0 {
		since = l.now().Add(-l.readingsAge)
	}
	return l.st.FeedResync(p, owns, since, func(e store.FeedEntry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := FromEntry(l.st.ID(), p, e)
		if err != nil {
			return err
		}
		r.Resync = true
		return fn(&r)
	})
}
