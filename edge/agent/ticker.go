package agent

import (
	"context"
	"errors"
	"time"

	"github.com/gridedge/gridedge/edge/clock"
)

// ErrStopSampling is returned by a Ticker whose schedule has ended; the
// channel stops sampling without counting an error.
var ErrStopSampling = errors.New("agent: sampling schedule ended")

// Ticker schedules the samples of the channels that share an interval.
type Ticker interface {
	// Next blocks until the next sample is due and returns its stamp. It
	// returns ctx.Err() when ctx is done and ErrStopSampling when the
	// schedule has ended.
	Next(ctx context.Context) (clock.Stamp, error)
}

// TickerFactory makes the ticker of the channels sampled every interval
// (one schedule per interval); channels are their names joined by commas.
type TickerFactory func(channels string, interval time.Duration) Ticker

// wallTicker fires at wall-clock multiples of the interval (10:00:00,
// 10:00:10, ...), so readings of different channels and gateways line up,
// and stamps each sample with the source's present time.
type wallTicker struct {
	src      clock.Source
	interval time.Duration
}

// SystemTicker is the default TickerFactory: wall-clock-aligned sampling
// with stamps from src.
func SystemTicker(src clock.Source) TickerFactory {
	return func(_ string, interval time.Duration) Ticker { return &wallTicker{src: src, interval: interval} }
}

func (w *wallTicker) Next(ctx context.Context) (clock.Stamp, error) {
	iv := int64(w.interval)
	now := w.src.Now().WallNs
	// The wait is at most one interval even if the wall clock steps
	// meanwhile: a step shifts the phase, it never stalls sampling.
	wait := time.Duration(iv - ((now%iv)+iv)%iv)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return clock.Stamp{}, ctx.Err()
	case <-t.C:
		return w.src.Now(), nil
	}
}

type sampleTimeKey struct{}

// SampleTime returns the stamp of the sample a Sense call is taking, when
// the agent's sampler called it. Drivers that model a quantity as a function
// of time (the simulator's) use it; hardware drivers need not.
func SampleTime(ctx context.Context) (clock.Stamp, bool) {
	st, ok := ctx.Value(sampleTimeKey{}).(clock.Stamp)
	return st, ok
}

func withSampleTime(ctx context.Context, st clock.Stamp) context.Context {
	return context.WithValue(ctx, sampleTimeKey{}, st)
}
