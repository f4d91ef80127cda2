package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/shared/topic"
	"github.com/gridedge/gridedge/shared/wire"
)

// Dead-letter reasons: the values of the "reason" label of
// gridedge_collector_deadletters_total and of DeadLetter.Reason.
const (
	ReasonBadTopic       = "bad_topic"       // topic outside the gridedge scheme
	ReasonMalformed      = "malformed"       // not a protobuf Batch
	ReasonSchemaVersion  = "schema_version"  // a schema version this build does not read
	ReasonInvalid        = "invalid"         // decodes, but violates the wire contract
	ReasonDeviceMismatch = "device_mismatch" // batch.device_id is not the topic's device
	ReasonTooLarge       = "too_large"       // larger than the log accepts
	ReasonTimeRange      = "time_range"      // a reading time outside 1970..2116, which no window or query can represent
)

// Space says whether there is room to accept a payload; a non-nil error
// (diskguard.ErrLowSpace) refuses it without a dead letter or an ack.
type Space interface {
	Check() error
}

// DeadLetters keeps rejected payloads.
type DeadLetters interface {
	PutDeadLetter(store.DeadLetter) (uint64, error)
}

// Outcome is what happened to one data payload.
type Outcome struct {
	Site, Device string
	// Ack is the acknowledgement to publish on the device's ack topic: every
	// seq of the batch is durably in the readings log.
	Ack *wire.Ack
	// Readings in the batch.
	Readings int
}

// RejectError is returned for a payload that was dead-lettered.
type RejectError struct {
	Reason string
	Err    error
}

func (e *RejectError) Error() string { return "rejected (" + e.Reason + "): " + e.Err.Error() }
func (e *RejectError) Unwrap() error { return e.Err }

// Intake validates payloads and appends them to the readings log. It is safe
// for concurrent use.
type Intake struct {
	log      readlog.Log
	dlq      DeadLetters
	space    Space
	logger   *slog.Logger
	maxBytes int
	m        struct {
		batches, deadLetters, statuses *prometheus.CounterVec
		readings                       prometheus.Counter
		appendSeconds                  prometheus.Histogram
	}
}

// Option changes an Intake.
type Option func(*Intake)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(in *Intake) { in.logger = l } }

// WithSpace makes intake refuse every payload (data and status) while
// sp.Check fails: nothing is written, dead letters included, and nothing is
// acknowledged, so agents keep their batches and resend them later.
func WithSpace(sp Space) Option { return func(in *Intake) { in.space = sp } }

// WithMaxPayload sets the largest payload accepted (default 1 MiB); larger
// ones are dead-lettered as too_large.
func WithMaxPayload(n int) Option { return func(in *Intake) { in.maxBytes = n } }

// New returns an Intake appending to lg, dead-lettering to dlq and
// registering its metrics on reg.
func New(lg readlog.Log, dlq DeadLetters, reg prometheus.Registerer, opts ...Option) (*Intake, error) {
	in := &Intake{log: lg, dlq: dlq, logger: slog.Default(), maxBytes: 1 << 20}
	for _, o := range opts {
		o(in)
	}
	in.m.batches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gridedge_collector_batches_total",
		Help: "Data payloads received, by outcome (logged: durably in the readings log; deadletter; log_error and disk_low: not acknowledged, the agent resends).",
	}, []string{"outcome"})
	in.m.deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gridedge_collector_deadletters_total",
		Help: "Payloads kept in the dead-letter area instead of being accepted, by reason.",
	}, []string{"reason"})
	in.m.statuses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gridedge_collector_status_messages_total",
		Help: "Status payloads received, by outcome (logged, rejected, empty, disk_low).",
	}, []string{"outcome"})
	in.m.readings = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gridedge_collector_readings_logged_total",
		Help: "Readings in batches appended to the readings log (duplicates included; the workers deduplicate).",
	})
	in.m.appendSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "gridedge_collector_batch_log_seconds",
		Help:    "Time from receiving a batch to its being durable in the readings log.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
	for _, c := range []prometheus.Collector{in.m.batches, in.m.deadLetters, in.m.statuses, in.m.readings, in.m.appendSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("intake: register metrics: %w", err)
		}
	}
	for _, o := range []string{"logged", "deadletter", "log_error", "disk_low"} {
		in.m.batches.WithLabelValues(o)
	}
	for _, r := range []string{ReasonBadTopic, ReasonMalformed, ReasonSchemaVersion, ReasonInvalid, ReasonDeviceMismatch, ReasonTooLarge, ReasonTimeRange} {
		in.m.deadLetters.WithLabelValues(r)
	}
	return in, nil
}

// HandleData validates one payload received on a data topic and appends it
// to its device's partition. done is called exactly once: with the outcome
// once the batch is durable in the log, with a *RejectError once the payload
// is dead-lettered (never to be acknowledged), or with another error when
// nothing is durable (do not acknowledge; the agent resends). It returns
// before the append is durable. While the disk is below its reserve
// (WithSpace) every payload fails with an error wrapping the space check's,
// before it is even decoded.
func (in *Intake) HandleData(ctx context.Context, topicName string, payload []byte, received time.Time, done func(Outcome, error)) {
	if err := in.checkSpace(); err != nil {
		in.m.batches.WithLabelValues("disk_low").Inc()
		done(Outcome{}, fmt.Errorf("intake: %s: %w", topicName, err))
		return
	}
	site, device, kind, err := topic.Parse(topicName)
	if err == nil && kind != topic.Data {
		err = fmt.Errorf("topic %q: kind %q is not %q", topicName, kind, topic.Data)
	}
	if err != nil {
		done(Outcome{}, in.reject(ReasonBadTopic, err, topicName, payload, received))
		return
	}
	out := Outcome{Site: site, Device: device}
	if len(payload) > in.maxBytes {
		done(out, in.reject(ReasonTooLarge, fmt.Errorf("payload of %d bytes, limit %d", len(payload), in.maxBytes), topicName, nil, received))
		return
	}
	// Scanned, not decoded: no allocation per reading (wire.ScanBatch
	// accepts exactly what wire.DecodeBatch does).
	seqs := make([]uint64, 0, 128)
	var timeErr error
	h, err := wire.ScanBatch(payload, func(r *wire.ReadingView) error {
		if timeErr == nil {
			timeErr = CheckTime(len(seqs), r)
		}
		seqs = append(seqs, r.Seq)
		return nil
	})
	if err != nil {
		reason := ReasonInvalid
		switch {
		case errors.Is(err, wire.ErrMalformed):
			reason = ReasonMalformed
		case errors.Is(err, wire.ErrSchemaVersion):
			reason = ReasonSchemaVersion
		}
		done(out, in.reject(reason, err, topicName, payload, received))
		return
	}
	if h.DeviceID != device {
		done(out, in.reject(ReasonDeviceMismatch,
			fmt.Errorf("batch device_id %q published on the topic of device %q", h.DeviceID, device), topicName, payload, received))
		return
	}
	if timeErr != nil {
		done(out, in.reject(ReasonTimeRange, timeErr, topicName, payload, received))
		return
	}
	out.Readings = len(seqs)
	out.Ack = &wire.Ack{SchemaVersion: wire.SchemaVersion, DeviceId: device, SeqEpoch: h.SeqEpoch, Ranges: wire.RangesOf(seqs)}
	rec := AppendRecord(make([]byte, 0, len(payload)+32), Record{Kind: KindData, ReceivedNs: received.UnixNano(), Site: site, Payload: payload})
	key := []byte(device)
	p := readlog.PartitionFor(key, in.log.Partitions())
	start := time.Now()
	err = in.log.Append(ctx, p, key, rec, func(_ int64, err error) {
		if err != nil {
			in.m.batches.WithLabelValues("log_error").Inc()
			done(out, fmt.Errorf("intake: %s: readings log: %w", topicName, err))
			return
		}
		in.m.batches.WithLabelValues("logged").Inc()
		in.m.readings.Add(float64(out.Readings))
		in.m.appendSeconds.Observe(time.Since(start).Seconds())
		done(out, nil)
	})
	if err != nil {
		in.m.batches.WithLabelValues("log_error").Inc()
		done(out, fmt.Errorf("intake: %s: readings log: %w", topicName, err))
	}
}

func (in *Intake) checkSpace() error {
	if in.space == nil {
		return nil
	}
	return in.space.Check()
}

func (in *Intake) reject(reason string, cause error, topicName string, payload []byte, received time.Time) error {
	in.m.batches.WithLabelValues("deadletter").Inc()
	in.m.deadLetters.WithLabelValues(reason).Inc()
	in.logger.Warn("payload dead-lettered", "reason", reason, "topic", topicName, "bytes", len(payload), "err", cause)
	rerr := &RejectError{Reason: reason, Err: cause}
	_, err := in.dlq.PutDeadLetter(store.DeadLetter{
		Reason: reason, Detail: cause.Error(), Topic: topicName, Received: received, Payload: payload,
	})
	if err != nil {
		return errors.Join(rerr, fmt.Errorf("intake: keep dead letter: %w", err))
	}
	return rerr
}

// HandleStatus validates a status message and appends it to its device's
// partition, where the worker applies it in order with the device's data.
// Invalid status payloads are counted and logged, not dead-lettered: they
// are retained messages the broker would replay on every subscribe. done is
// called once, as for HandleData.
func (in *Intake) HandleStatus(ctx context.Context, topicName string, payload []byte, received time.Time, done func(error)) {
	if err := in.checkSpace(); err != nil {
		in.m.statuses.WithLabelValues("disk_low").Inc()
		done(fmt.Errorf("intake: status %s: %w", topicName, err))
		return
	}
	site, device, kind, err := topic.Parse(topicName)
	if err == nil && kind != topic.Status {
		err = fmt.Errorf("kind %q is not %q", kind, topic.Status)
	}
	if err == nil && len(payload) == 0 {
		// An empty retained payload clears the retained status; nothing to keep.
		in.m.statuses.WithLabelValues("empty").Inc()
		done(nil)
		return
	}
	var st *wire.Status
	if err == nil {
		st, err = wire.DecodeStatus(payload)
	}
	if err == nil && st.DeviceId != device {
		err = fmt.Errorf("status device_id %q on the topic of device %q", st.DeviceId, device)
	}
	if err != nil {
		in.m.statuses.WithLabelValues("rejected").Inc()
		in.logger.Warn("status rejected", "topic", topicName, "err", err)
		done(fmt.Errorf("intake: status %s: %w", topicName, err))
		return
	}
	rec := AppendRecord(nil, Record{Kind: KindStatus, ReceivedNs: received.UnixNano(), Site: site, Payload: payload})
	key := []byte(device)
	err = in.log.Append(ctx, readlog.PartitionFor(key, in.log.Partitions()), key, rec, func(_ int64, err error) {
		if err == nil {
			in.m.statuses.WithLabelValues("logged").Inc()
		}
		done(err)
	})
	if err != nil {
		done(fmt.Errorf("intake: status %s: %w", topicName, err))
	}
}
