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
// start until every reading is stored (deduplicated, windowed, committed
// to each node's store with fsync).
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
				for i := range batchesPerDevice {
					for d := range devices {
						dev := fmt.Sprintf("meter-%04d", d)
						rec := intake.AppendRecord(nil, intake.Record{Kind: intake.KindData, ReceivedNs: t0.UnixNano(), Site: "s",
							Payload: encode(b, makeBatch(dev, 1, uint64(i*perBatch), perBatch))})
						if err := lg.Append(context.Background(), readlog.PartitionFor([]byte(dev), partitions), []byte(dev), rec,
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
				for {
					var stored uint64
					for _, n := range nodes {
						for _, s := range n.stats() {
							stored += s.Stored
						}
					}
					if stored >= total {
						break
					}
					if time.Since(start) > 5*time.Minute {
						b.Fatalf("%d of %d readings stored after 5 minutes", stored, total)
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
