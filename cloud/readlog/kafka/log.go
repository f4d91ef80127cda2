package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/gridedge/gridedge/cloud/readlog"
)

// ErrTooLarge is returned by Append for a record over WithMaxRecordBytes.
var ErrTooLarge = errors.New("readlog/kafka: record too large")

// requestTimeout bounds the administrative requests of Open, Commit and
// the readers' offset look-ups.
const requestTimeout = 15 * time.Second

// Log is the Kafka readings log. It is safe for concurrent use.
type Log struct {
	o      settings
	n      int
	prod   *kgo.Client
	adm    *kadm.Client
	closed atomic.Bool

	mu      sync.Mutex
	members map[string]*Member // group -> this process's member, for commits
	readers map[*Reader]struct{}
	topicID [16]byte // the readings topic's, once known
}

var _ readlog.Log = (*Log)(nil)

// Open connects to the brokers, creates the topic when it is missing (with
// WithPartitions) and checks its partition count.
func Open(ctx context.Context, opts ...Option) (*Log, error) {
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	if len(o.brokers) == 0 {
		return nil, errors.New("readlog/kafka: no brokers (WithBrokers)")
	}
	if o.topic == "" || o.partitions < 0 || o.maxRecordBytes <= 0 || o.inflightBytes < o.maxRecordBytes {
		return nil, fmt.Errorf("readlog/kafka: invalid options (topic %q, partitions %d, max record %d, in-flight %d bytes)",
			o.topic, o.partitions, o.maxRecordBytes, o.inflightBytes)
	}
	if err := o.sasl.Validate(); err != nil {
		return nil, fmt.Errorf("readlog/kafka: %w", err)
	}
	base, err := o.clientOpts()
	if err != nil {
		return nil, err
	}
	prod, err := kgo.NewClient(append(base,
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent: the default, and it needs acks=all
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedBytes(o.inflightBytes),
		kgo.ProducerBatchMaxBytes(int32(o.maxRecordBytes+batchOverhead)),
		kgo.RecordDeliveryTimeout(o.deliveryTimeout),
		kgo.ProducerLinger(0),
	)...)
	if err != nil {
		return nil, fmt.Errorf("readlog/kafka: producer: %w", err)
	}
	l := &Log{o: o, prod: prod, adm: kadm.NewClient(prod), members: map[string]*Member{}, readers: map[*Reader]struct{}{}}
	if l.n, err = l.EnsureTopic(ctx, o.topic, o.partitions); err != nil {
		prod.Close()
		return nil, err
	}
	return l, nil
}

// batchOverhead is a record batch's framing beyond one record's key and
// value (batch header 61 B, record header up to about 30 B).
const batchOverhead = 128

// metadataMinAge is how stale the clients' cached metadata may be when a
// request needs it.
const metadataMinAge = 500 * time.Millisecond

func (o *settings) clientOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(o.brokers...),
		kgo.ClientID(o.clientID),
		kgo.WithLogger(kgoLogger{o.log}),
		kgo.MetadataMinAge(metadataMinAge),
	}
	if o.tls != nil {
		opts = append(opts, kgo.DialTLSConfig(o.tls.Clone()))
	}
	user, pass := o.sasl.Username, o.sasl.Password
	switch strings.ToUpper(o.sasl.Mechanism) {
	case "":
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
	}
	return opts, nil
}

// EnsureTopic returns topic's partition count, creating it with partitions
// (and the log's replication and retention) when it is missing and the log
// may create topics. An existing topic with another count than a non-zero
// partitions is refused.
func (l *Log) EnsureTopic(ctx context.Context, topic string, partitions int) (int, error) {
	var cfg map[string]*string
	if l.o.retention > 0 {
		cfg = map[string]*string{"retention.ms": kadm.StringPtr(strconv.FormatInt(l.o.retention.Milliseconds(), 10))}
	}
	return l.ensureTopic(ctx, topic, partitions, cfg)
}

func (l *Log) ensureTopic(ctx context.Context, topic string, partitions int, cfg map[string]*string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	for {
		td, err := l.adm.ListTopics(ctx, topic)
		if err != nil {
			return 0, fmt.Errorf("readlog/kafka: brokers %s: %w", strings.Join(l.o.brokers, ","), err)
		}
		t, ok := td[topic]
		if ok && t.Err == nil {
			n := len(t.Partitions)
			if partitions != 0 && n != partitions {
				return 0, fmt.Errorf("readlog/kafka: topic %s has %d partitions, configured %d: devices would change partition; configure %d (or use a new topic)",
					topic, n, partitions, n)
			}
			return n, nil
		}
		if ok && !errors.Is(t.Err, kerr.UnknownTopicOrPartition) {
			return 0, fmt.Errorf("readlog/kafka: topic %s: %w", topic, t.Err)
		}
		if !l.o.create || partitions == 0 {
			return 0, fmt.Errorf("readlog/kafka: topic %s does not exist (create it, or give a partition count to have it created)", topic)
		}
		_, err = l.adm.CreateTopic(ctx, int32(partitions), l.o.replication, cfg, topic)
		switch {
		case err == nil:
			l.o.log.Info("topic created", "topic", topic, "partitions", partitions)
			return partitions, nil
		case !errors.Is(err, kerr.TopicAlreadyExists):
			return 0, fmt.Errorf("readlog/kafka: create topic %s: %w", topic, err)
		}
		// Another node created it meanwhile: list it again once the
		// client's metadata is refreshed.
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("readlog/kafka: topic %s: %w", topic, ctx.Err())
		case <-time.After(metadataMinAge):
		}
	}
}

// Topic is the readings topic.
func (l *Log) Topic() string { return l.o.topic }

// Partitions is the topic's partition count.
func (l *Log) Partitions() int { return l.n }

// Append produces value to partition p. done runs once the brokers have
// acknowledged the record (acks=all), with its offset, or with an error.
func (l *Log) Append(ctx context.Context, p int, key, value []byte, done func(int64, error)) error {
	switch {
	case l.closed.Load():
		return readlog.ErrClosed
	case p < 0 || p >= l.n:
		return fmt.Errorf("readlog/kafka: partition %d out of range [0,%d)", p, l.n)
	case done == nil:
		return errors.New("readlog/kafka: Append without a done callback")
	case len(key)+len(value) > l.o.maxRecordBytes:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(key)+len(value), l.o.maxRecordBytes)
	}
	rec := &kgo.Record{Topic: l.o.topic, Partition: int32(p), Key: key, Value: value}
	l.prod.Produce(ctx, rec, func(r *kgo.Record, err error) {
		if err != nil {
			if errors.Is(err, kgo.ErrClientClosed) {
				err = readlog.ErrClosed
			}
			done(-1, fmt.Errorf("readlog/kafka: partition %d: %w", p, err))
			return
		}
		done(r.Offset, nil)
	})
	return nil
}

// Offsets returns partition p's first retained offset and its end (the
// offset the next record will get).
func (l *Log) Offsets(ctx context.Context, p int) (start, end int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	starts, err := l.adm.ListStartOffsets(ctx, l.o.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, 0, fmt.Errorf("readlog/kafka: start offsets: %w", err)
	}
	ends, err := l.adm.ListEndOffsets(ctx, l.o.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, 0, fmt.Errorf("readlog/kafka: end offsets: %w", err)
	}
	s, ok1 := starts.Lookup(l.o.topic, int32(p))
	e, ok2 := ends.Lookup(l.o.topic, int32(p))
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("readlog/kafka: partition %d not listed", p)
	}
	return s.Offset, e.Offset, nil
}

// Commit stores group's offset for partition p: through this process's
// member of the group when there is one (with its generation), otherwise
// as an administrative commit (refused by Kafka while the group has
// members elsewhere).
func (l *Log) Commit(group string, p int, offset int64) error {
	if l.closed.Load() {
		return readlog.ErrClosed
	}
	if p < 0 || p >= l.n || offset < 0 {
		return fmt.Errorf("readlog/kafka: commit of partition %d offset %d: out of range", p, offset)
	}
	l.mu.Lock()
	m := l.members[group]
	l.mu.Unlock()
	if m != nil {
		return m.commit(p, offset)
	}
	group = l.o.groupPrefix + group
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: l.o.topic, Partition: int32(p), At: offset, LeaderEpoch: -1})
	resp, err := l.adm.CommitOffsets(ctx, group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("readlog/kafka: commit %s partition %d: %w", group, p, err)
	}
	return nil
}

// Committed returns group's committed offset of every partition that has
// one.
func (l *Log) Committed(ctx context.Context, group string) (map[int]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := l.adm.FetchOffsets(ctx, l.o.groupPrefix+group)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("readlog/kafka: committed offsets of %s: %w", group, err)
	}
	out := map[int]int64{}
	for p, o := range resp[l.o.topic] {
		out[int(p)] = o.At
	}
	return out, nil
}

// Publish produces value to partition 0 of another topic (dead letters,
// for instance) with the log's producer; done reports the brokers'
// acknowledgement.
func (l *Log) Publish(ctx context.Context, topic string, key, value []byte, done func(error)) {
	if l.closed.Load() {
		done(readlog.ErrClosed)
		return
	}
	l.prod.Produce(ctx, &kgo.Record{Topic: topic, Key: key, Value: value}, func(_ *kgo.Record, err error) { done(err) })
}

// Ping checks that a broker answers.
func (l *Log) Ping(ctx context.Context) error {
	if l.closed.Load() {
		return readlog.ErrClosed
	}
	if err := l.prod.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	return nil
}

// Close waits (up to the delivery timeout) for buffered records to be
// acknowledged, then closes the readers and the producer; records still
// unacknowledged fail with readlog.ErrClosed. Members must be closed first.
func (l *Log) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.o.deliveryTimeout)
	err := l.prod.Flush(ctx)
	cancel()
	l.mu.Lock()
	readers := make([]*Reader, 0, len(l.readers))
	for r := range l.readers {
		readers = append(readers, r)
	}
	l.mu.Unlock()
	for _, r := range readers {
		r.Close()
	}
	l.prod.Close()
	if err != nil {
		return fmt.Errorf("readlog/kafka: close: records not acknowledged: %w", err)
	}
	return nil
}

// kgoLogger passes franz-go's warnings and errors to slog.
type kgoLogger struct{ l *slog.Logger }

func (kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, kv ...any) {
	lv := slog.LevelWarn
	if level == kgo.LogLevelError {
		lv = slog.LevelError
	}
	k.l.Log(context.Background(), lv, "kafka: "+msg, kv...)
}
