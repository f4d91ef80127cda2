package window

import (
	"github.com/gridedge/gridedge/shared/wire"
)

// Reading is the engine's input: one decoded, deduplicated measurement.
// (Device, SeqEpoch, Seq) is its identity; the engine assumes each identity is
// applied once (the collector deduplicates before applying).
type Reading struct {
	Device   string
	Channel  string
	Quantity wire.Quantity
	TimeNs   int64 // event time, ns since the Unix epoch (UTC)
	Value    float64
	Quality  wire.TimeQuality
	SeqEpoch uint64
	Seq      uint64
}

// Key names a result series. For a derived series Channel is the derived
// name and Quantity is QUANTITY_UNSPECIFIED. For a joined session pipeline
// Channel is the join's channels joined by "+".
type Key struct {
	Device   string
	Channel  string
	Quantity wire.Quantity
}

// Span is a half-open event-time interval [Start, End) in ns.
type Span struct {
	Start, End int64
}

// Row is one reading (or joined row) in a Readings aggregation or session.
// For joined sessions Values holds one value per joined channel, in the
// order of Pipeline.Join; otherwise Values has one element.
type Row struct {
	TimeNs int64
	Values []float64
}

// Result is one emission of a window. Sinks upsert on (Pipeline, Key, Start)
// and keep the highest Revision.
type Result struct {
	Pipeline string
	Key      Key
	Start    int64
	End      int64
	// Revision counts emissions of this window, starting at 1.
	Revision uint32
	// Provisional is set when the window was emitted because its device went
	// idle before the watermark passed its end; a final revision follows.
	Provisional bool
	// Retracted is set for a session that no longer exists because a late
	// reading merged it into another (whose start differs).
	Retracted bool
	// Names and Values are the aggregates, in the pipeline's order. Names is
	// shared and must not be modified.
	Names  []string
	Values []float64
	// Count of readings in the window.
	Count int64
	// Coverage is the share of the window's MaxGap-wide slots holding at
	// least one reading (1 = no gap longer than a slot).
	Coverage float64
	// WorstQuality is the worst time quality among the window's readings.
	WorstQuality wire.TimeQuality
	// CounterResets counts decreases of an energy counter in the window.
	CounterResets int
	// Rows holds the readings for a Readings aggregation or session.
	Rows []Row
}

// Value returns the aggregate called name.
func (r *Result) Value(name string) (float64, bool) {
	for i, n := range r.Names {
		if n == name {
			return r.Values[i], true
		}
	}
	return 0, false
}

// LateReading is a reading that arrived after the allowed lateness of some
// window it belongs to. Windows lists those windows; if the reading also
// belonged to windows still open (sliding windows), it updated them.
type LateReading struct {
	Pipeline string
	Reading  Reading
	Windows  []Span
}

// Output is what the engine emitted since the last TakeOutput.
type Output struct {
	Results []Result
	Late    []LateReading
}

// AppendBatch appends the readings of a decoded, validated batch to dst as
// engine readings. Strings are shared with the batch, not copied.
func AppendBatch(dst []Reading, b *wire.Batch) []Reading {
	for _, r := range b.Readings {
		dst = append(dst, Reading{
			Device: b.DeviceId, Channel: r.Channel, Quantity: r.Quantity, TimeNs: r.WallNs,
			Value: r.Value, Quality: r.TimeQuality, SeqEpoch: b.SeqEpoch, Seq: r.Seq,
		})
	}
	return dst
}
