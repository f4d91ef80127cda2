// Package intake is the stateless front of the collector: it validates what
// devices publish, dead-letters what cannot be accepted (with a reason), and
// appends each accepted batch — and each status message — to the readings
// log partition of its device. A batch is acknowledged to its device only
// once the log holds it durably; deduplication and windowing happen after
// the log, in the worker that owns the partition, so any number of intake
// nodes can share one MQTT subscription.
package intake
