package collector

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gridedge/gridedge/cloud/feed"
	"github.com/gridedge/gridedge/cloud/intake"
	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/cloud/readlog/kafka"
	"github.com/gridedge/gridedge/cloud/store"
)

// BenchmarkClusterWorkers measures how fast 1, 2 and 4 worker nodes drain a
// readings topic on kfake (in-process Kafka): 8 partitions holding 2,000
// batches of 100 readings of 500 devices; the clock runs from the workers'
// start until every partition's offset is committed, that is until every
// reading is deduplicated, windowed and its state, results and offset
// committed in a Kafka transaction (and written to the node's store with
// fsync).
//
//	go test -run '^$' -bench ClusterWorkers -benchtime 1x ./cloud/collector/
func BenchmarkClusterWorkers(b *testing.B) {
	const partitions, devices, batchesPerDevice, perBatch = 8, 500, 4, 100
	for _, workers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers-%d", workers), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				k := kafkaCluster(b)
				cfg := clusterConfig(b, RoleWorker, "", k)
				cfg.Kafka.Partitions = partitions
				cfg.CommitInterval = time.Second
				lg, err := kafka.Open(context.Background(), kafka.WithBrokers(k.ListenAddrs()...), kafka.WithPartitions(partitions), kafka.WithLogger(testLogger(b)))
				if err != nil {
					b.Fatal(err)
				}
				done := make(chan error, devices*batchesPerDevice)
				end := make([]int64, partitions) // next offset of each partition once all is appended
				for i := range batchesPerDevice {
					for d := range devices {
						dev := fmt.Sprintf("meter-%04d", d)
						rec := intake.AppendRecord(nil, intake.Record{Kind: intake.KindData, ReceivedNs: t0.UnixNano(), Site: "s",
							Payload: encode(b, makeBatch(dev, 1, uint64(i*perBatch), perBatch))})
						p := readlog.PartitionFor([]byte(dev), partitions)
						end[p]++
						if err := lg.Append(context.Background(), p, []byte(dev), rec,
							func(_ int64, err error) { done <- err }); err != nil {
							b.Fatal(err)
						}
					}
				}
				for range devices * batchesPerDevice {
					if err := <-done; err != nil {
						b.Fatal(err)
					}
				}
				lg.Close()
				b.StartTimer()
				start := time.Now()
				var nodes []*WorkerNode
				var stops []func()
				for range workers {
					c := cfg
					c.DataDir = b.TempDir()
					n, err := NewWorker(c, WithLogger(testLogger(b)))
					if err != nil {
						b.Fatal(err)
					}
					nodes = append(nodes, n)
					stops = append(stops, startNodeB(b, n.Run))
				}
				const total = devices * batchesPerDevice * perBatch
				for !allCommitted(nodes, end) {
					if time.Since(start) > 5*time.Minute {
						b.Fatal("not every partition committed after 5 minutes")
					}
					time.Sleep(5 * time.Millisecond)
				}
				elapsed := time.Since(start)
				b.StopTimer()
				for _, stop := range stops {
					stop()
				}
				b.ReportMetric(float64(total)/elapsed.Seconds(), "readings/s")
				b.ReportMetric(float64(total)/elapsed.Seconds()/float64(workers), "readings/s/worker")
			}
		})
	}
}

// allCommitted reports whether every partition p has a worker among
// nodes whose last commit reached end[p].
func allCommitted(nodes []*WorkerNode, end []int64) bool {
	done := make([]bool, len(end))
	for _, n := range nodes {
		n.mu.Lock()
		for p, pr := range n.parts {
			pr.mu.Lock()
			if pr.w != nil && pr.w.Stats().Committed >= end[p] {
				done[p] = true
			}
			pr.mu.Unlock()
		}
		n.mu.Unlock()
	}
	for _, d := range done {
		if !d {
			return false
		}
	}
	return true
}

func startNodeB(b *testing.B, run func(context.Context) error) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}
}

// BenchmarkClusterSink measures how fast a sink stores what the workers
// committed: 100,000 results-feed records (one revision each of windows of
// 500 devices) spread over the 8 partitions of the results topic on kfake;
// the clock runs from the sink's start until every record is in its store
// (one synced batch per poll, positions included).
//
//	go test -run '^$' -bench ClusterSink -benchtime 1x ./cloud/collector/
func BenchmarkClusterSink(b *testing.B) {
	const partitions, records = 8, 100_000
	for range b.N {
		b.StopTimer()
		k := kafkaCluster(b)
		cfg := clusterConfig(b, RoleSink, "", k)
		cfg.Kafka.Partitions = partitions
		prod, err := kgo.NewClient(kgo.SeedBrokers(k.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.AllowAutoTopicCreation())
		if err != nil {
			b.Fatal(err)
		}
		lg, err := kafka.Open(context.Background(), kafka.WithBrokers(k.ListenAddrs()...), kafka.WithPartitions(partitions), kafka.WithLogger(testLogger(b)))
		if err != nil {
			b.Fatal(err)
		}
		if err := lg.EnsureTopics(context.Background(), outputTopics(cfg, partitions)...); err != nil {
			b.Fatal(err)
		}
		lg.Close()
		recs := make([]*kgo.Record, 0, records)
		for i := range records {
			dev := fmt.Sprintf("meter-%04d", i%500)
			start := t0.Add(time.Duration(i/500) * time.Minute)
			v, err := feed.Encode(&feed.Record{V: feed.Version, Kind: feed.KindResult, Result: &store.WindowResult{
				Pipeline: "windows_1m", Device: dev, Channel: "mains", Quantity: "active_power", Start: start, End: start.Add(time.Minute),
				Revision: 1, Count: 60, Coverage: 1, WorstQuality: "synced",
				Values: map[string]float64{"count": 60, "sum": 12345.5, "mean": 205.75, "min": 100, "max": 300}}})
			if err != nil {
				b.Fatal(err)
			}
			recs = append(recs, &kgo.Record{Topic: cfg.Kafka.ResultsTopic, Partition: int32(readlog.PartitionFor([]byte(dev), partitions)),
				Key: []byte(dev), Value: v})
		}
		if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
		prod.Close()
		b.StartTimer()
		start := time.Now()
		n, err := NewSink(cfg, WithLogger(testLogger(b)))
		if err != nil {
			b.Fatal(err)
		}
		stop := startNodeB(b, n.Run)
		for n.applied.Load() < records {
			if time.Since(start) > 5*time.Minute {
				b.Fatalf("%d of %d records stored after 5 minutes", n.applied.Load(), records)
			}
			time.Sleep(5 * time.Millisecond)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		stop()
		b.ReportMetric(float64(records)/elapsed.Seconds(), "records/s")
	}
}
