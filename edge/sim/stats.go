package sim

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram counts durations in log-linear buckets (16 per power of two of
// microseconds: within 6.25 % of the true value) without locks; 1 µs to
// about 35 min, larger values in the last bucket.
type histogram struct {
	buckets [histBuckets]atomic.Uint64
}

const (
	histSub     = 16
	histBuckets = 32 * histSub
)

func histIndex(d time.Duration) int {
	us := uint64(max(d.Microseconds(), 1))
	exp := bits.Len64(us) - 1 // us in [2^exp, 2^(exp+1))
	if exp < 4 {
		return int(us) // exact below 16 µs
	}
	sub := int((us >> (exp - 4)) & (histSub - 1))
	return min((exp-3)*histSub+sub, histBuckets-1)
}

// histValue is a bucket's lower bound.
func histValue(i int) time.Duration {
	if i < histSub {
		return time.Duration(i) * time.Microsecond
	}
	exp := i/histSub + 3
	sub := uint64(i % histSub)
	return time.Duration((histSub+sub)<<(exp-4)) * time.Microsecond
}

func (h *histogram) add(d time.Duration) { h.buckets[histIndex(d)].Add(1) }

// snapshot copies the counts.
func (h *histogram) snapshot() []uint64 {
	out := make([]uint64, histBuckets)
	for i := range h.buckets {
		out[i] = h.buckets[i].Load()
	}
	return out
}

// quantiles returns the count and the given quantiles of counts.
func quantiles(counts []uint64, qs ...float64) (uint64, []time.Duration) {
	var n uint64
	for _, c := range counts {
		n += c
	}
	out := make([]time.Duration, len(qs))
	if n == 0 {
		return 0, out
	}
	for j, q := range qs {
		rank := uint64(math.Ceil(q * float64(n)))
		var seen uint64
		for i, c := range counts {
			seen += c
			if seen >= max(rank, 1) {
				out[j] = histValue(i)
				break
			}
		}
	}
	return n, out
}

// Progress is a snapshot of a running simulation, for live display and
// load reports. Rates are over the last progress interval.
type Progress struct {
	// Elapsed is real time since sampling began; SimTime is where the
	// simulated clock stands.
	Elapsed time.Duration `json:"elapsed_ns"`
	SimTime time.Time     `json:"sim_time"`
	// Started meters are running; Connected have an open broker connection.
	Started   int `json:"meters_started"`
	Connected int `json:"meters_connected"`
	// Generated readings were buffered; Acked were acknowledged end to end
	// (stored durably by the collector) and deleted; Lag is the difference.
	Generated uint64 `json:"generated"`
	Acked     uint64 `json:"acked"`
	Lag       int64  `json:"lag"`
	// GeneratedPerSec and AckedPerSec are over the last interval.
	GeneratedPerSec float64 `json:"generated_per_sec"`
	AckedPerSec     float64 `json:"acked_per_sec"`
	// AckP50 and AckP99 are the end-to-end ack latency (generation to
	// ack) over the readings acked in the last interval; AckLatencyN is
	// how many that was.
	AckP50      time.Duration `json:"ack_p50_ns"`
	AckP99      time.Duration `json:"ack_p99_ns"`
	AckLatencyN uint64        `json:"ack_latency_n"`
	// Final is set on the last report of a run.
	Final bool `json:"final"`
}

// fleet holds the run-wide counters.
type fleet struct {
	started   atomic.Int64
	connected atomic.Int64
	generated atomic.Uint64
	acked     atomic.Uint64
	ackLat    histogram
}

// progress builds the report at now, given the previous one and the
// histogram counts it was computed from (nil for the first).
func (f *fleet) progress(clk *Clock, began time.Time, prev Progress, prevCounts []uint64) (Progress, []uint64) {
	counts := f.ackLat.snapshot()
	delta := make([]uint64, len(counts))
	for i := range counts {
		delta[i] = counts[i]
		if prevCounts != nil {
			delta[i] -= prevCounts[i]
		}
	}
	n, q := quantiles(delta, 0.5, 0.99)
	p := Progress{
		Elapsed: time.Since(began), SimTime: clk.start.Add(clk.Elapsed()).UTC(),
		Started: int(f.started.Load()), Connected: int(f.connected.Load()),
		Generated: f.generated.Load(), Acked: f.acked.Load(),
		AckP50: q[0], AckP99: q[1], AckLatencyN: n,
	}
	p.Lag = int64(p.Generated) - int64(p.Acked)
	if dt := (p.Elapsed - prev.Elapsed).Seconds(); dt > 0 {
		p.GeneratedPerSec = float64(p.Generated-prev.Generated) / dt
		p.AckedPerSec = float64(p.Acked-prev.Acked) / dt
	}
	return p, counts
}
