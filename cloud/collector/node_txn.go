package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gridedge/gridedge/cloud/feed"
	"github.com/gridedge/gridedge/cloud/readlog/kafka"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/worker"
)

// stateTopics are the topics a partition's worker state is replayed from
// on takeover: the changelog and the raw-reading blocks.
func stateTopics(k KafkaConfig) []string { return []string{k.ChangelogTopic, k.RawTopic} }

// StoreKeyHeader is the record header of the late and conflict topics
// that carries the record's key in the collector's store, where a sink
// puts it.
const StoreKeyHeader = "gridedge-store-key"

// restoreBatchBytes bounds the store batch a changelog restore builds
// before writing it.
const restoreBatchBytes = 4 << 20

// txnTimeout bounds one commit transaction, end to end.
const txnTimeout = time.Minute

// stateTopic is the topic a store key of a worker commit is replayed
// from on takeover ("" for outputs only a sink needs): the changelog for
// the offset, engine and dedup state, device counters and statuses, the
// raw topic for raw-reading blocks (which the worker reads back to
// compare resent readings).
func stateTopic(k KafkaConfig, c store.Class) string {
	switch c {
	case store.ClassState, store.ClassDevice, store.ClassStatus:
		return k.ChangelogTopic
	case store.ClassBlock:
		return k.RawTopic
	}
	return ""
}

// takeOver fences every earlier owner of partition p (their open
// transaction is aborted, their next one refused) and brings this node's
// store up to date with the partition's changelog and raw topic: from
// where this node last applied each (from their start when it never did)
// up to the fence records. The store is a cache of those topics: its
// content for p is replaced key by key, so whatever this node held from an
// earlier ownership is overwritten by what other owners committed since.
func (n *WorkerNode) takeOver(ctx context.Context, p int) (*kafka.Txn, error) {
	topics := stateTopics(n.cfg.Kafka)
	txn, err := n.klog.NewTxn(ctx, worker.Group, p, topics...)
	if err != nil {
		return nil, err
	}
	var applied int64
	for _, topic := range topics {
		a, err := n.replay(ctx, txn, topic, p)
		if err != nil {
			txn.Close()
			return nil, fmt.Errorf("restore partition %d from %s: %w", p, topic, err)
		}
		applied += a
	}
	n.m.restored.Add(float64(applied))
	return txn, nil
}

// replay applies topic's partition p to the store, from the store's
// cursor up to txn's fence.
func (n *WorkerNode) replay(ctx context.Context, txn *kafka.Txn, topic string, p int) (int64, error) {
	from, err := n.st.Cursor(topic, p)
	if err != nil {
		return 0, err
	}
	if from == 0 && topic == n.cfg.Kafka.ChangelogTopic {
		// Never applied here: state left by an earlier release must not
		// mix with the changelog's.
		if err := n.st.DropPartitionState(p); err != nil {
			return 0, err
		}
	}
	b := n.st.NewBatch(p)
	var applied int64
	err = n.klog.ReadCommitted(ctx, topic, p, from, txn.Fence(topic), func(r *kgo.Record) error {
		if stateTopic(n.cfg.Kafka, store.KeyClass(r.Key)) == topic {
			var err error
			if r.Value == nil {
				err = b.Delete(r.Key)
			} else {
				err = b.Set(r.Key, r.Value)
			}
			if err != nil {
				return err
			}
			applied++
		}
		b.SetCursor(topic, p, r.Offset+1)
		if b.Len() >= restoreBatchBytes {
			if err := b.Commit(); err != nil {
				return err
			}
			b = n.st.NewBatch(p)
		}
		return nil
	})
	if err != nil {
		b.Abandon()
		return 0, err
	}
	n.log.Info("state replayed", "topic", topic, "partition", p, "from", from, "to", txn.Fence(topic), "records_applied", applied)
	return applied, b.Commit()
}

// txnCommitter makes a partition worker's commit durable in Kafka: the
// changelog records, results, device counters and statuses (results
// topic, feed records), late readings (late topic, feed records) and
// conflicts of the commit and the readings offset to resume from, in one
// transaction; then the same batch goes to the node's store with the
// changelog position.
type txnCommitter struct {
	n   *WorkerNode
	p   int
	ctx context.Context
	txn *kafka.Txn
	// source names the writer in feed records: the partition's
	// transactional id.
	source string
	recs   []*kgo.Record
}

func (c *txnCommitter) Commit(b *store.Batch, next int64) error {
	k := c.n.cfg.Kafka
	clear(c.recs)
	c.recs = c.recs[:0]
	add := func(topic string, key, value []byte, storeKey []byte) {
		r := &kgo.Record{Topic: topic, Partition: int32(c.p), Key: key, Value: value}
		if storeKey != nil {
			r.Headers = []kgo.RecordHeader{{Key: StoreKeyHeader, Value: storeKey}}
		}
		c.recs = append(c.recs, r)
	}
	at := c.n.now().UTC()
	feedRec := func(r *feed.Record) error {
		r.V, r.Source, r.Partition, r.At = feed.Version, c.source, c.p, at
		v, err := feed.Encode(r)
		if err != nil {
			return err
		}
		add(k.ResultsTopic, []byte(r.DeviceID()), v, nil)
		return nil
	}
	err := b.Each(func(key, value []byte) error {
		cl := store.KeyClass(key)
		if topic := stateTopic(k, cl); topic != "" {
			add(topic, key, value, nil)
		}
		switch cl {
		case store.ClassResult:
			r := feed.Record{Kind: feed.KindResult, Result: new(store.WindowResult)}
			if err := json.Unmarshal(value, r.Result); err != nil {
				return fmt.Errorf("results topic: %w", err)
			}
			return feedRec(&r)
		case store.ClassDevice:
			r := feed.Record{Kind: feed.KindDevice, Device: new(store.DeviceInfo)}
			if err := json.Unmarshal(value, r.Device); err != nil {
				return fmt.Errorf("results topic: %w", err)
			}
			return feedRec(&r)
		case store.ClassStatus:
			r := feed.Record{Kind: feed.KindStatus, Status: new(store.Status)}
			if err := json.Unmarshal(value, r.Status); err != nil {
				return fmt.Errorf("results topic: %w", err)
			}
			return feedRec(&r)
		case store.ClassLate:
			r := feed.Record{V: feed.Version, Kind: feed.KindLate, Source: c.source, Partition: c.p, At: at, Late: new(store.LateReading)}
			if err := json.Unmarshal(value, r.Late); err != nil {
				return fmt.Errorf("late topic: %w", err)
			}
			v, err := feed.Encode(&r)
			if err != nil {
				return err
			}
			add(k.LateTopic, []byte(r.DeviceID()), v, key)
		case store.ClassConflict:
			add(k.ConflictTopic, deviceOf(value), value, key)
		}
		return nil
	})
	if err != nil {
		b.Abandon()
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, txnTimeout)
	defer cancel()
	if err := c.txn.Commit(ctx, c.recs, next); err != nil {
		c.n.m.aborted.Inc()
		b.Abandon()
		return err
	}
	c.n.m.txns.Inc()
	last := map[string]int64{}
	for _, r := range c.recs {
		if r.Topic == k.ChangelogTopic || r.Topic == k.RawTopic {
			last[r.Topic] = max(last[r.Topic], r.Offset+1)
		}
	}
	for topic, next := range last {
		b.SetCursor(topic, c.p, next)
	}
	// Committed in Kafka: the store is a cache of it, so a failed write
	// here is redone by the next restore.
	return b.Commit()
}

// deviceOf reads the "device" field of a JSON value.
func deviceOf(v []byte) []byte {
	var d struct {
		Device string `json:"device"`
	}
	if json.Unmarshal(v, &d) != nil {
		return nil
	}
	return []byte(d.Device)
}

// outputTopics are the topics workers write and sinks read, with the
// readings topic's partition count (a partition's worker writes the same
// partition of each).
func outputTopics(cfg Config, partitions int) []kafka.TopicSpec {
	k := cfg.Kafka
	return []kafka.TopicSpec{
		{Name: k.ChangelogTopic, Partitions: partitions, Compact: true},
		{Name: k.RawTopic, Partitions: partitions, Compact: true, Retention: cfg.ReadingsRetention},
		{Name: k.ResultsTopic, Partitions: partitions, Retention: cfg.ResultsRetention},
		{Name: k.LateTopic, Partitions: partitions, Retention: cfg.LateRetention},
		{Name: k.ConflictTopic, Partitions: partitions, Retention: cfg.ConflictRetention},
	}
}
