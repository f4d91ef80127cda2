// Package analytics derives anomaly bands and forecasts from stored window
// results.
//
// A Runner wakes on a schedule (every 10 minutes by default). For each
// device whose newest reading time moved since its last refit — an idle
// fleet costs one scan of the device list per cycle and nothing else — it
// reads up to History (15 days) of one source pipeline's results
// (energy_15m, value energy), fits one seasonal baseline per series, and
// writes, in one store commit through store.Batch.PutOutput (the path the
// workers use, so the API and every sink carry them unchanged):
//
//   - anomaly results (pipeline anomaly_15m): for every source window within
//     Lookback that has no anomaly result yet, or whose source was revised
//     since, the values expected, lower, upper, actual, score, anomaly (0 or
//     1) and kind (1 spike, 2 sustained_high, 3 sustained_low). The result
//     takes its source window's revision.
//   - forecast results (pipeline forecast_15m): expected, lower and upper of
//     every window from the one holding now to Horizon (24 h) ahead, written
//     as a new revision only when the band changed.
//
// The baseline is a time-of-day × weekday profile: per local slot the median
// and MAD of the history (pooled with Neighbours slots each side), the
// weekday estimate shrunk toward the time-of-day estimate by
// n/(n+Shrink), the scale floored at FloorShare of the series' mean absolute
// value. Medians and MADs are not moved by the outliers the detector looks
// for. A window outside expected ± Z·scale is "out"; it is flagged as
// sustained_high or sustained_low when it ends a run of Persist such
// windows (an appliance left on; a meter stuck at zero, where a value of
// exactly 0 in a slot rarely 0 counts as low), or as a spike when it is
// SpikeZ·scale above the expectation.
//
// Bounds: at most MaxDevicesPerCycle devices are refitted per cycle (the
// rest wait, least recently refitted first), at most MaxSeriesPerDevice
// series per device, History/Resolution windows per series are read, and
// a model (8 × slots per day × 32 bytes, 24 KiB at 15 minutes) lives only
// while its device is refitted. Between cycles the runner holds one small
// entry per device.
package analytics
