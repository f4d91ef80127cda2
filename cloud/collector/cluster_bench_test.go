package collector

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/intake"
	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/cloud/readlog/kafka"
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
