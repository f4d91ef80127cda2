package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FenceKey is the key of the record a new Txn writes to its partition of
// each state topic when it takes the partition over. Restores read up to
// it; no store key starts with 0x00.
var FenceKey = []byte("\x00fence")

// ErrFenced says another process took the partition's transactional id
// over: this one no longer owns the partition.
var ErrFenced = errors.New("readlog/kafka: fenced by a newer owner of the partition")

// Txn is the transactional producer of one readings partition's worker.
// Its transactional id is fixed per partition, so a new owner's Txn fences
// the previous owner's: from then on the old one's transactions fail
// (ErrFenced) and its open transaction is aborted. Not safe for concurrent
// use.
type Txn struct {
	l       *Log
	p       int
	group   string
	cl      *kgo.Client
	fences  map[string]int64
	topicID [16]byte
}

// TxnTimeout is how long a transaction may stay open: the coordinator
// aborts one left open longer by a crashed worker (the next owner's fence
// aborts it at once).
const TxnTimeout = 30 * time.Second

// NewTxn starts the transactional producer of readings partition p, under
// transactional id <group prefix><group>-<p>, and fences every earlier
// producer of that id: their open transaction is aborted. It then commits
// a fence record to partition p of each of fenceTopics; Fence returns its
// offset, which a restore reads up to.
func (l *Log) NewTxn(ctx context.Context, group string, p int, fenceTopics ...string) (*Txn, error) {
	if l.closed.Load() {
		return nil, errors.New("readlog/kafka: txn: log closed")
	}
	base, err := l.o.clientOpts()
	if err != nil {
		return nil, err
	}
	txid := l.o.groupPrefix + group + "-" + strconv.Itoa(p)
	cl, err := kgo.NewClient(append(base,
		kgo.TransactionalID(txid),
		kgo.TransactionTimeout(TxnTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(int32(l.o.maxRecordBytes+batchOverhead)),
		kgo.RecordDeliveryTimeout(l.o.deliveryTimeout),
		kgo.ProducerLinger(0),
	)...)
	if err != nil {
		return nil, fmt.Errorf("readlog/kafka: txn %s: %w", txid, err)
	}
	t := &Txn{l: l, p: p, group: l.o.groupPrefix + group, cl: cl, fences: map[string]int64{}}
	// TxnOffsetCommit v6+ names the readings topic by its id.
	if t.topicID, err = l.readingsTopicID(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("readlog/kafka: txn %s: %w", txid, err)
	}
	var fences []*kgo.Record
	for _, topic := range fenceTopics {
		fences = append(fences, &kgo.Record{Topic: topic, Partition: int32(p), Key: FenceKey,
			Value: strconv.AppendInt(nil, time.Now().UnixNano(), 10)})
	}
	if err := t.run(ctx, fences, -1); err != nil {
		cl.Close()
		return nil, fmt.Errorf("readlog/kafka: txn %s: fence: %w", txid, err)
	}
	for _, r := range fences {
		t.fences[r.Topic] = r.Offset
	}
	return t, nil
}

// Fence is the offset of the fence record NewTxn committed to topic.
func (t *Txn) Fence(topic string) int64 { return t.fences[topic] }

// Commit produces recs and commits next as the group's offset of the
// readings partition, in one transaction: all of it becomes visible to
// read_committed consumers, or none. recs get their offsets. ErrFenced
// means another process owns the partition now.
func (t *Txn) Commit(ctx context.Context, recs []*kgo.Record, next int64) error {
	return t.run(ctx, recs, next)
}

func (t *Txn) run(ctx context.Context, recs []*kgo.Record, next int64) error {
	if err := t.cl.BeginTransaction(); err != nil {
		return t.fail(ctx, err)
	}
	if err := t.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return t.fail(ctx, err)
	}
	if next >= 0 {
		if err := t.commitOffset(ctx, next); err != nil {
			return t.fail(ctx, err)
		}
	}
	if err := t.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return t.fail(ctx, err)
	}
	return nil
}

// commitOffset adds the group's offset of the readings partition to the
// open transaction (AddOffsetsToTxn, TxnOffsetCommit without a generation:
// the transactional id, fixed per partition, is what fences).
func (t *Txn) commitOffset(ctx context.Context, next int64) error {
	id, epoch, err := t.cl.ProducerID(ctx)
	if err != nil {
		return err
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = t.txid(), id, epoch, t.group
	aresp, err := add.RequestWith(ctx, t.cl)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(aresp.ErrorCode); err != nil {
		return err
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = t.txid(), t.group, id, epoch
	req.Generation, req.MemberID = -1, ""
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic, rt.TopicID = t.l.o.topic, t.topicID
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch = int32(t.p), next, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, t.cl)
	if err != nil {
		return err
	}
	for _, tr := range resp.Topics {
		for _, pr := range tr.Partitions {
			if err := kerr.ErrorForCode(pr.ErrorCode); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *Txn) txid() string { return t.group + "-" + strconv.Itoa(t.p) }

// ID is the transactional id.
func (t *Txn) ID() string { return t.txid() }

// fail aborts the open transaction (what was produced is never visible to
// read_committed consumers) and classifies err.
func (t *Txn) fail(ctx context.Context, err error) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	if aerr := t.cl.AbortBufferedRecords(actx); aerr == nil {
		_ = t.cl.EndTransaction(actx, kgo.TryAbort)
	}
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed) || errors.Is(err, kerr.InvalidProducerIDMapping) {
		return fmt.Errorf("%w: partition %d: %w", ErrFenced, t.p, err)
	}
	return fmt.Errorf("readlog/kafka: transaction of partition %d: %w", t.p, err)
}

// Close closes the producer (an open transaction is aborted by the
// coordinator, at the latest after TxnTimeout).
func (t *Txn) Close() { t.cl.Close() }

// ReadCommitted calls fn with the committed records of topic's partition p
// from offset from (the first retained one, when from was deleted) until
// it has returned a record at or beyond until. Aborted records and
// transaction markers are skipped.
func (l *Log) ReadCommitted(ctx context.Context, topic string, p int, from, until int64, fn func(*kgo.Record) error) error {
	if from > until {
		return nil
	}
	base, err := l.o.clientOpts()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(base,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {int32(p): kgo.NewOffset().At(from)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(int32(l.o.fetchBytes)),
		kgo.FetchMaxPartitionBytes(int32(l.o.fetchBytes)),
	)...)
	if err != nil {
		return fmt.Errorf("readlog/kafka: read %s/%d: %w", topic, p, err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) {
				ferr = err
			}
		})
		if ferr != nil {
			return fmt.Errorf("readlog/kafka: read %s/%d: %w", topic, p, ferr)
		}
		done := false
		var cerr error
		fs.EachRecord(func(r *kgo.Record) {
			if done || cerr != nil {
				return
			}
			if cerr = fn(r); cerr == nil && r.Offset >= until {
				done = true
			}
		})
		if cerr != nil {
			return cerr
		}
		if done {
			return nil
		}
	}
}

// TopicSpec is a topic EnsureTopics creates when missing.
type TopicSpec struct {
	Name       string
	Partitions int
	// Compact makes it a compacted topic (cleanup.policy=compact); with
	// Retention too, records older than it are also deleted
	// (compact,delete). Retention 0: the brokers' default.
	Compact   bool
	Retention time.Duration
}

// EnsureTopics creates the missing topics of specs and checks the
// partition counts of existing ones.
func (l *Log) EnsureTopics(ctx context.Context, specs ...TopicSpec) error {
	for _, s := range specs {
		cfg := map[string]*string{}
		switch {
		case s.Compact && s.Retention > 0:
			cfg["cleanup.policy"] = kadm.StringPtr("compact,delete")
		case s.Compact:
			cfg["cleanup.policy"] = kadm.StringPtr("compact")
		}
		if s.Retention > 0 {
			cfg["retention.ms"] = kadm.StringPtr(strconv.FormatInt(s.Retention.Milliseconds(), 10))
		}
		if _, err := l.ensureTopic(ctx, s.Name, s.Partitions, cfg); err != nil {
			return err
		}
	}
	return nil
}

// readingsTopicID returns the readings topic's id, asking the brokers
// until they know it (a topic just created may not be listed at once).
func (l *Log) readingsTopicID(ctx context.Context) ([16]byte, error) {
	l.mu.Lock()
	id := l.topicID
	l.mu.Unlock()
	if id != ([16]byte{}) {
		return id, nil
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	for {
		td, err := l.adm.ListTopics(ctx, l.o.topic)
		if err == nil {
			err = td.Error()
		}
		if err == nil {
			id = td[l.o.topic].ID
			l.mu.Lock()
			l.topicID = id
			l.mu.Unlock()
			return id, nil
		}
		select {
		case <-ctx.Done():
			return id, fmt.Errorf("topic %s: %w", l.o.topic, err)
		case <-time.After(metadataMinAge):
		}
	}
}
