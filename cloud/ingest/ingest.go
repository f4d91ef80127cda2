package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/shared/topic"
	"github.com/gridedge/gridedge/shared/wire"
)

// Dead-letter reasons. They are the values of the "reason" label of
// gridedge_collector_deadletters_total and of DeadLetter.Reason.
const (
	ReasonBadTopic       = "bad_topic"       // topic outside the gridedge scheme
	ReasonMalformed      = "malformed"       // not a protobuf Batch
	ReasonSchemaVersion  = "schema_version"  // a schema version this build does not read
	ReasonInvalid        = "invalid"         // decodes, but violates the wire contract
	ReasonDeviceMismatch = "device_mismatch" // batch.device_id is not the topic's device
	ReasonTooLarge       = "too_large"       // does not fit one store transaction
)

// Ingester applies payloads to a store. It is safe for concurrent use.
type Ingester struct {
	store   *store.Store
	log     *slog.Logger
	transit time.Duration
	m       metrics
}

type metrics struct {
	batches       *prometheus.CounterVec
	deadLetters   *prometheus.CounterVec
	readings      *prometheus.CounterVec
	windows       *prometheus.CounterVec
	statuses      *prometheus.CounterVec
	storeErrors   prometheus.Counter
	applySeconds  prometheus.Histogram
	batchReadings prometheus.Histogram
	redated       prometheus.Counter
}

// Option changes an Ingester.
type Option func(*Ingester)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(in *Ingester) { in.log = l } }

// WithTransitBound sets the error bound of readings dated from the receive
// time (the time rule for boots that never synced; default
// DefaultTransitBound).
func WithTransitBound(d time.Duration) Option { return func(in *Ingester) { in.transit = d } }

// New returns an Ingester writing to st and registering its metrics on reg.
func New(st *store.Store, reg prometheus.Registerer, opts ...Option) (*Ingester, error) {
	in := &Ingester{store: st, log: slog.Default(), transit: DefaultTransitBound}
	for _, o := range opts {
		o(in)
	}
	in.m = metrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gridedge_collector_batches_total",
			Help: "Data payloads received, by outcome (stored, deadletter, store_error).",
		}, []string{"outcome"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gridedge_collector_deadletters_total",
			Help: "Payloads kept in the dead-letter area instead of being stored, by reason.",
		}, []string{"reason"}),
		readings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gridedge_collector_readings_total",
			Help: "Readings in accepted batches, by outcome (stored, duplicate).",
		}, []string{"outcome"}),
		windows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gridedge_collector_windows_total",
			Help: "Window results fired: closed (revision 1) or revised (a closed window changed).",
		}, []string{"event"}),
		statuses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gridedge_collector_status_messages_total",
			Help: "Status payloads received, by outcome (stored, rejected).",
		}, []string{"outcome"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gridedge_collector_store_errors_total",
			Help: "Store writes that failed; the batch is not acknowledged and the agent resends it.",
		}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gridedge_collector_batch_apply_seconds",
			Help:    "Time to decode, deduplicate, store and sync one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		batchReadings: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gridedge_collector_batch_readings",
			Help:    "Readings per accepted batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		redated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gridedge_collector_readings_redated_total",
			Help: "Estimated readings of a never-synced boot dated from the collector's receive time (time rule of docs/time.md).",
		}),
	}
	for _, c := range []prometheus.Collector{in.m.batches, in.m.deadLetters, in.m.readings, in.m.windows, in.m.statuses, in.m.storeErrors, in.m.applySeconds, in.m.batchReadings, in.m.redated} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("ingest: register metrics: %w", err)
		}
	}
	// Expose every reason from the start so dashboards and alerts see zeros.
	for _, r := range []string{ReasonBadTopic, ReasonMalformed, ReasonSchemaVersion, ReasonInvalid, ReasonDeviceMismatch, ReasonTooLarge} {
		in.m.deadLetters.WithLabelValues(r)
	}
	return in, nil
}

// Outcome is what happened to one data payload.
type Outcome struct {
	Site   string
	Device string
	// Ack is the acknowledgement to publish on the device's ack topic; nil
	// when the payload was dead-lettered.
	Ack    *wire.Ack
	Result store.Result
	// DeadLetter is the reason the payload was dead-lettered, or "".
	DeadLetter string
}

// RejectError is returned for a payload that was dead-lettered.
type RejectError struct {
	Reason string
	Err    error
}

func (e *RejectError) Error() string { return "rejected (" + e.Reason + "): " + e.Err.Error() }
func (e *RejectError) Unwrap() error { return e.Err }

// HandleData processes one payload received on a data topic. When it returns
// a nil error the batch's readings are durably stored and Outcome.Ack is the
// acknowledgement to publish. A *RejectError means the payload was
// dead-lettered (durably, unless the store also failed, which is then
// reported too). Any other error is a store failure: nothing was stored and
// nothing must be acknowledged.
func (in *Ingester) HandleData(topicName string, payload []byte, received time.Time) (Outcome, error) {
	start := time.Now()
	site, device, kind, err := topic.Parse(topicName)
	if err == nil && kind != topic.Data {
		err = fmt.Errorf("topic %q: kind %q is not %q", topicName, kind, topic.Data)
	}
	if err != nil {
		return in.reject(Outcome{}, ReasonBadTopic, err, topicName, payload, received)
	}
	out := Outcome{Site: site, Device: device}
	b, err := wire.DecodeBatch(payload)
	if err != nil {
		reason := ReasonInvalid
		switch {
		case errors.Is(err, wire.ErrMalformed):
			reason = ReasonMalformed
		case errors.Is(err, wire.ErrSchemaVersion):
			reason = ReasonSchemaVersion
		}
		return in.reject(out, reason, err, topicName, payload, received)
	}
	if b.DeviceId != device {
		return in.reject(out, ReasonDeviceMismatch,
			fmt.Errorf("batch device_id %q published on the topic of device %q", b.DeviceId, device), topicName, payload, received)
	}
	// Before storing, so the stored time, the windows and the engine all
	// see the re-dated time; dedup is by seq, so a resend re-dated
	// differently is still recognised.
	in.m.redated.Add(float64(redate(b, received, in.transit)))
	res, err := in.store.ApplyBatch(site, b, received)
	if errors.Is(err, store.ErrBatchTooLarge) {
		return in.reject(out, ReasonTooLarge, err, topicName, payload, received)
	}
	if err != nil {
		in.m.batches.WithLabelValues("store_error").Inc()
		in.m.storeErrors.Inc()
		return out, fmt.Errorf("ingest: %s: %w", topicName, err)
	}
	out.Result = res
	out.Ack = &wire.Ack{
		SchemaVersion:     wire.SchemaVersion,
		DeviceId:          device,
		SeqEpoch:          b.SeqEpoch,
		Ranges:            wire.RangesOf(res.Seqs),
		ContiguousThrough: res.ContiguousThrough,
	}
	in.m.batches.WithLabelValues("stored").Inc()
	in.m.readings.WithLabelValues("stored").Add(float64(res.Stored))
	in.m.readings.WithLabelValues("duplicate").Add(float64(res.Duplicates))
	in.m.windows.WithLabelValues("closed").Add(float64(res.WindowsClosed))
	in.m.windows.WithLabelValues("revised").Add(float64(res.WindowsRevised))
	in.m.batchReadings.Observe(float64(len(b.Readings)))
	in.m.applySeconds.Observe(time.Since(start).Seconds())
	return out, nil
}

func (in *Ingester) reject(out Outcome, reason string, cause error, topicName string, payload []byte, received time.Time) (Outcome, error) {
	out.DeadLetter = reason
	in.m.batches.WithLabelValues("deadletter").Inc()
	in.m.deadLetters.WithLabelValues(reason).Inc()
	in.log.Warn("payload dead-lettered", "reason", reason, "topic", topicName, "bytes", len(payload), "err", cause)
	rerr := &RejectError{Reason: reason, Err: cause}
	_, err := in.store.PutDeadLetter(store.DeadLetter{
		Reason: reason, Detail: cause.Error(), Topic: topicName, Received: received, Payload: payload,
	})
	if err != nil {
		in.m.storeErrors.Inc()
		return out, errors.Join(rerr, fmt.Errorf("ingest: keep dead letter: %w", err))
	}
	return out, rerr
}

// HandleStatus stores the latest status of a device. Invalid status payloads
// are counted and logged, not dead-lettered: they are retained messages the
// broker would replay on every subscribe.
func (in *Ingester) HandleStatus(topicName string, payload []byte, received time.Time) error {
	site, device, kind, err := topic.Parse(topicName)
	if err == nil && kind != topic.Status {
		err = fmt.Errorf("kind %q is not %q", kind, topic.Status)
	}
	var st *wire.Status
	if err == nil && len(payload) == 0 {
		// An empty retained payload clears the retained status; nothing to keep.
		in.m.statuses.WithLabelValues("empty").Inc()
		return nil
	}
	if err == nil {
		st, err = wire.DecodeStatus(payload)
	}
	if err == nil && st.DeviceId != device {
		err = fmt.Errorf("status device_id %q on the topic of device %q", st.DeviceId, device)
	}
	if err != nil {
		in.m.statuses.WithLabelValues("rejected").Inc()
		in.log.Warn("status rejected", "topic", topicName, "err", err)
		return fmt.Errorf("ingest: status %s: %w", topicName, err)
	}
	if err := in.store.PutStatus(site, st, received); err != nil {
		in.m.storeErrors.Inc()
		return fmt.Errorf("ingest: %w", err)
	}
	in.m.statuses.WithLabelValues("stored").Inc()
	return nil
}
