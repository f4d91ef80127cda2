// Package agent wires the gateway together: configuration, sensors, the
// clock, one sampling schedule per interval, the durable buffer and the
// publisher.
//
// Channels with the same interval share one schedule: one ticker wakes them,
// each senses on its own goroutine at wall times that are exact multiples
// of the interval, and the readings of one tick are appended in one write;
// a failing sensor is counted per channel and never stops the others. Every
// reading is appended to the buffer (which gives it its sequence number)
// before anything else sees it, so what is generated is what will be
// delivered.
//
// The sampling schedule is pluggable (WithTicker) so the simulator can run
// the real pipeline on simulated time; a driver can learn the scheduled
// time of the sample it is taking with SampleTime.
package agent
