package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/gridedge/gridedge/cloud/window"
)

// Log is the durable input: every deduplicated reading, numbered by an
// offset that increases with every reading in the order they were stored.
// Offsets may skip numbers (a store that reserves offsets for a write that
// then fails never uses them), but never go back.
type Log interface {
	// Replay calls fn for each reading with offset > after, in offset order.
	Replay(ctx context.Context, after uint64, fn func(offset uint64, r *window.Reading) error) error
}

// TimedLog is a Log that also keeps each reading's processing (receive)
// time. Open replays it advancing the engine's processing-time clock as the
// original run did, so a device is not taken for idle merely because its
// readings are being replayed after a restart.
type TimedLog interface {
	Log
	// ReplayTimed is Replay with the processing time of each reading.
	ReplayTimed(ctx context.Context, after uint64, fn func(offset uint64, procNs int64, r *window.Reading) error) error
}

// Sink stores what the engine produced.
type Sink interface {
	// Commit stores out (results as upserts on pipeline, key and window
	// start keeping the highest revision; late readings appended) and the
	// engine state, atomically: after a crash either both are stored or
	// neither.
	Commit(ctx context.Context, out window.Output, state []byte) error
	// LoadState returns the state of the last Commit, or nil if none.
	LoadState(ctx context.Context) ([]byte, error)
}

// Runner owns an engine and commits its output. It is not safe for
// concurrent use.
type Runner struct {
	eng       *window.Engine
	pipes     []window.Pipeline
	sink      Sink
	every     int
	log       *slog.Logger
	pending   window.Output // taken from the engine, not yet committed
	sinceLast int
	applied   uint64
	zones     map[string]string
	stateLen  int
}

// Option configures a Runner.
type Option func(*Runner)

// WithCommitEvery commits after n readings (default 10,000); Commit can
// always be called explicitly, e.g. on a timer.
func WithCommitEvery(n int) Option { return func(r *Runner) { r.every = max(n, 1) } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(r *Runner) { r.log = l } }

// WithTimeZones sets devices' time zones (Engine.SetTimeZone) before the
// log is replayed, so calendar windows of a replay get the zones the devices
// announced.
func WithTimeZones(zones map[string]string) Option {
	return func(r *Runner) { r.zones = zones }
}

// Open restores the engine from the sink's last state (or starts empty),
// replays the log after it and commits the result.
func Open(ctx context.Context, pipes []window.Pipeline, log Log, sink Sink, opts ...Option) (*Runner, error) {
	r := &Runner{pipes: pipes, sink: sink, every: 10_000, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(r)
	}
	state, err := sink.LoadState(ctx)
	if err != nil {
		return nil, fmt.Errorf("window pipeline: load state: %w", err)
	}
	if state == nil {
		r.eng, err = window.New(pipes, window.WithLogger(r.log))
	} else {
		r.eng, err = window.Restore(pipes, state, window.WithLogger(r.log))
	}
	if err != nil {
		return nil, fmt.Errorf("window pipeline: %w", err)
	}
	for dev, zone := range r.zones {
		if err := r.eng.SetTimeZone(dev, zone); err != nil {
			r.log.Warn("device time zone not usable", "device", dev, "err", err)
		}
	}
	r.applied = r.eng.AppliedThrough()
	from := r.applied
	replayed := 0
	apply := func(offset uint64, rd *window.Reading) error {
		if err := r.applyOne(offset, rd); err != nil {
			return err
		}
		replayed++
		return nil
	}
	if tl, ok := log.(TimedLog); ok {
		err = tl.ReplayTimed(ctx, from, func(offset uint64, procNs int64, rd *window.Reading) error {
			r.eng.Advance(procNs)
			return apply(offset, rd)
		})
	} else {
		err = log.Replay(ctx, from, apply)
	}
	if err != nil {
		return nil, fmt.Errorf("window pipeline: replay after offset %d: %w", from, err)
	}
	if err := r.Commit(ctx); err != nil {
		return nil, err
	}
	r.log.Info("window pipeline open", "restored", state != nil, "replayed", replayed, "applied_through", r.applied)
	return r, nil
}

// ErrOffset is returned when readings are applied out of log order.
var ErrOffset = errors.New("window pipeline: offset out of order")

func (r *Runner) applyOne(offset uint64, rd *window.Reading) error {
	if offset <= r.applied {
		return fmt.Errorf("%w: got %d after %d", ErrOffset, offset, r.applied)
	}
	r.eng.Apply(rd)
	r.applied = offset
	r.eng.MarkApplied(offset)
	r.sinceLast++
	return nil
}

// Apply applies readings stored in the log at offsets first, first+1, ...
// at processing time procNs, and commits when enough readings are
// uncommitted. The first offset must be above the last one applied.
func (r *Runner) Apply(ctx context.Context, first uint64, rs []window.Reading, procNs int64) error {
	r.eng.Advance(procNs)
	for i := range rs {
		if err := r.applyOne(first+uint64(i), &rs[i]); err != nil {
			return err
		}
	}
	if r.sinceLast >= r.every {
		return r.Commit(ctx)
	}
	return nil
}

// Advance moves processing time (for idle devices) without readings.
func (r *Runner) Advance(procNs int64) { r.eng.Advance(procNs) }

// Commit writes everything produced since the last successful commit with
// the current engine state. If the sink fails, the output is kept and
// written by the next Commit, so nothing is lost.
func (r *Runner) Commit(ctx context.Context) error {
	out := r.eng.TakeOutput()
	r.pending.Results = append(r.pending.Results, out.Results...)
	r.pending.Late = append(r.pending.Late, out.Late...)
	state, err := r.eng.Checkpoint()
	if err != nil {
		return fmt.Errorf("window pipeline: %w", err)
	}
	if err := r.sink.Commit(ctx, r.pending, state); err != nil {
		return fmt.Errorf("window pipeline: commit through offset %d: %w", r.applied, err)
	}
	r.pending = window.Output{}
	r.sinceLast = 0
	r.stateLen = len(state)
	return nil
}

// SetTimeZone sets a device's IANA time zone for calendar windows created
// from now on (Engine.SetTimeZone). The zone is part of the checkpoint.
func (r *Runner) SetTimeZone(device, zone string) error { return r.eng.SetTimeZone(device, zone) }

// StateBytes is the size of the last committed checkpoint.
func (r *Runner) StateBytes() int { return r.stateLen }

// AppliedThrough is the last log offset applied.
func (r *Runner) AppliedThrough() uint64 { return r.applied }

// Stats returns the engine's counters.
func (r *Runner) Stats() window.Stats { return r.eng.Stats() }
