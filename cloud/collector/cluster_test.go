package collector

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/wire"
)

const clusterPartitions = 4

// kafkaCluster starts an in-process Kafka whose groups accept short
// session timeouts.
func kafkaCluster(t testing.TB) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func clusterConfig(t testing.TB, role, mqttURL string, k *kfake.Cluster) Config {
	cfg := testConfig(t, mqttURL, t.TempDir())
	cfg.Role = role
	cfg.Kafka.Brokers = k.ListenAddrs()
	cfg.Kafka.Partitions = clusterPartitions
	cfg.Kafka.SessionTimeout = time.Second
	if role == RoleWorker {
		cfg.MQTTURL = ""
	}
	return cfg
}

// startNode runs a node until stop or the end of the test.
func startNode(t *testing.T, run func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func startIntake(t *testing.T, cfg Config) *IntakeNode {
	t.Helper()
	n, err := NewIntake(cfg, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	startNode(t, n.Run)
	select {
	case <-n.Ready():
	case <-time.After(waitLimit):
		t.Fatal("intake did not subscribe")
	}
	return n
}

func startWorker(t *testing.T, cfg Config) (*WorkerNode, func()) {
	t.Helper()
	n, err := NewWorker(cfg, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	return n, startNode(t, n.Run)
}

// owners maps each partition to the workers owning it.
func owners(ws ...*WorkerNode) map[int][]*WorkerNode {
	out := map[int][]*WorkerNode{}
	for _, w := range ws {
		for _, p := range w.Owned() {
			out[p] = append(out[p], w)
		}
	}
	return out
}

func everyPartitionOnce(ws ...*WorkerNode) bool {
	o := owners(ws...)
	if len(o) != clusterPartitions {
		return false
	}
	for _, ow := range o {
		if len(ow) != 1 {
			return false
		}
	}
	return true
}

// TestClusterWorkerLostMidStream runs 2 intake nodes and 3 workers on one
// Kafka behind a real Mosquitto. Half-way through, the worker owning the
// most partitions disappears without leaving the group (a crash: static
// membership, no leave); its partitions move to the others once its
// session expires, the agents resend what they sent, and every device's
// readings are stored exactly once by its partition's new owner, with
// results equal to an uninterrupted computation.
func TestClusterWorkerLostMidStream(t *testing.T) {
	b := mqtttest.Start(t)
	k := kafkaCluster(t)
	var ws []*WorkerNode
	var stops []func()
	for i := range 3 {
		cfg := clusterConfig(t, RoleWorker, "", k)
		cfg.Kafka.InstanceID = fmt.Sprintf("worker-%d", i)
		w, stop := startWorker(t, cfg)
		ws, stops = append(ws, w), append(stops, stop)
	}
	for i := range 2 {
		cfg := clusterConfig(t, RoleIntake, b.URL(), k)
		cfg.ClientID = fmt.Sprintf("intake-%d", i)
		startIntake(t, cfg)
	}
	waitFor(t, "every partition owned by one worker", func() bool { return everyPartitionOnce(ws...) })

	devices := []string{"m-01", "m-02", "m-03", "m-04", "m-05", "m-06", "m-07", "m-08"}
	const batches, perBatch = 16, 50
	ag := newAgent(t, b.URL(), "agents", nil)
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			for _, d := range devices {
				ag.publish("site", d, encode(t, makeBatch(d, 3, uint64(i*perBatch), perBatch)))
			}
		}
	}
	publish(0, batches/2)
	waitFor(t, "first half acknowledged", func() bool { return ag.ackCount() >= len(devices)*batches/2 })

	// Lose the busiest worker.
	lost := 0
	for i, w := range ws {
		if len(w.Owned()) > len(ws[lost].Owned()) {
			lost = i
		}
	}
	moved := ws[lost].Owned()
	stops[lost]()
	rest := slices.Delete(slices.Clone(ws), lost, lost+1)
	publish(batches/2, batches)
	waitFor(t, "its partitions moved to the others", func() bool { return everyPartitionOnce(rest...) })
	// The agents did not get every ack in the crash: they resend all.
	publish(0, batches)
	waitFor(t, "every batch acknowledged", func() bool { return ag.ackCount() >= len(devices)*batches*2 })

	all := func(d string) []*wire.Reading { return makeBatch(d, 3, 0, batches*perBatch).Readings }
	o := owners(rest...)
	for _, d := range devices {
		p := readlog.PartitionFor([]byte(d), clusterPartitions)
		w := o[p][0]
		waitFor(t, d+" stored by its owner", func() bool { return readingsStored(t, w.HTTPAddr(), d) >= batches*perBatch })
		var out struct{ Devices []deviceJSON }
		getJSON(t, "http://"+w.HTTPAddr()+"/api/v1/devices", &out)
		for _, dj := range out.Devices {
			if dj.ID == d && dj.ReadingsStored != batches*perBatch {
				t.Fatalf("%s (partition %d, moved %v) stored %d readings, want exactly %d", d, p, slices.Contains(moved, p), dj.ReadingsStored, batches*perBatch)
			}
		}
		checkWindows(t, w.HTTPAddr(), d, all(d), time.Minute)
		cfg := clusterConfig(t, RoleWorker, "", k)
		waitForResults(t, w.HTTPAddr(), d, cfg.Pipelines, uninterrupted(t, cfg, d, 3, all(d)))
	}
	if len(moved) == 0 {
		t.Fatal("the lost worker owned no partition: nothing moved")
	}
}
