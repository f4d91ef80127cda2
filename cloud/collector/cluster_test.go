package collector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gridedge/gridedge/cloud/feed"
	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/cloud/store"
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
	if role == RoleWorker || role == RoleSink {
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

func startIntake(t *testing.T, cfg Config) (*IntakeNode, func()) {
	t.Helper()
	n, err := NewIntake(cfg, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	stop := startNode(t, n.Run)
	select {
	case <-n.Ready():
	case <-time.After(waitLimit):
		t.Fatal("intake did not subscribe")
	}
	return n, stop
}

func startWorker(t *testing.T, cfg Config) (*WorkerNode, func()) {
	t.Helper()
	n, err := NewWorker(cfg, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	return n, startNode(t, n.Run)
}

func startSink(t *testing.T, cfg Config) *SinkNode {
	t.Helper()
	n, err := NewSink(cfg, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	startNode(t, n.Run)
	return n
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

// rig is a cluster in one test: a Kafka, a real Mosquitto, intake nodes,
// workers, a sink reading the output topics, and an agent publishing.
type rig struct {
	t       *testing.T
	b       *mqtttest.Broker
	k       *kfake.Cluster
	intakes []*IntakeNode
	istops  []func()
	workers []*WorkerNode
	wstops  []func()
	wcfgs   []Config
	sink    *SinkNode
	ag      *agent

	mu    sync.Mutex
	acked map[string]map[uint64]bool // device -> seqs acknowledged
}

var rigDevices = []string{"m-01", "m-02", "m-03", "m-04", "m-05", "m-06", "m-07", "m-08"}

const rigBatches, rigPerBatch = 12, 50

func newRig(t *testing.T, b *mqtttest.Broker, intakes, workers int) *rig {
	r := &rig{t: t, b: b, k: kafkaCluster(t), acked: map[string]map[uint64]bool{}}
	// A share group of its own: a stopped intake's persistent session
	// keeps its place in its group, and another rig's must not take data.
	share := fmt.Sprintf("rig%d", time.Now().UnixNano())
	for range workers {
		r.addWorker()
	}
	for i := range intakes {
		cfg := clusterConfig(t, RoleIntake, b.URL(), r.k)
		cfg.ClientID = fmt.Sprintf("intake-%s-%d", share, i)
		cfg.ShareGroup = share
		n, stop := startIntake(t, cfg)
		r.intakes, r.istops = append(r.intakes, n), append(r.istops, stop)
	}
	r.sink = startSink(t, clusterConfig(t, RoleSink, "", r.k))
	waitFor(t, "every partition owned by one worker", func() bool { return everyPartitionOnce(r.workers...) })
	r.ag = newAgent(t, b.URL(), fmt.Sprintf("agents-%d", time.Now().UnixNano()), func(a *wire.Ack) {
		r.mu.Lock()
		defer r.mu.Unlock()
		m := r.acked[a.DeviceId]
		if m == nil {
			m = map[uint64]bool{}
			r.acked[a.DeviceId] = m
		}
		for _, sr := range a.Ranges {
			for s := sr.First; s <= sr.Last; s++ {
				m[s] = true
			}
		}
	})
	return r
}

// resendUntilAcked resends, as agents do after their ack timeout, every
// batch below upTo not acknowledged yet, until all are: a lost intake
// node's persistent session keeps a share of the subscription's messages
// queued, so a round of resends may need another.
func (r *rig) resendUntilAcked(upTo int) {
	deadline := time.Now().Add(waitLimit)
	for {
		var missing [][2]int // device index, batch
		r.mu.Lock()
		for di, d := range rigDevices {
			for i := range upTo {
				for s := range uint64(rigPerBatch) {
					if !r.acked[d][uint64(i*rigPerBatch)+s] {
						missing = append(missing, [2]int{di, i})
						break
					}
				}
			}
		}
		r.mu.Unlock()
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%d batches still unacknowledged after resending for %v", len(missing), waitLimit)
		}
		for _, m := range missing {
			d := rigDevices[m[0]]
			r.ag.publish("site", d, encode(r.t, makeBatch(d, 3, uint64(m[1]*rigPerBatch), rigPerBatch)))
		}
		time.Sleep(time.Second) // the agents' ack timeout, shortened
	}
}

// waitAcked waits until every device's readings of batches below upTo
// have been acknowledged (by any ack, first send or resend).
func (r *rig) waitAcked(what string, upTo int) {
	waitFor(r.t, what, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, d := range rigDevices {
			for s := range uint64(upTo * rigPerBatch) {
				if !r.acked[d][s] {
					return false
				}
			}
		}
		return true
	})
}

func (r *rig) addWorker() *WorkerNode {
	cfg := clusterConfig(r.t, RoleWorker, "", r.k)
	cfg.Kafka.InstanceID = fmt.Sprintf("worker-%d", len(r.workers))
	w, stop := startWorker(r.t, cfg)
	r.workers, r.wstops, r.wcfgs = append(r.workers, w), append(r.wstops, stop), append(r.wcfgs, cfg)
	return w
}

// restartWorker starts worker i again on its data directory, with its
// instance id.
func (r *rig) restartWorker(i int) *WorkerNode {
	w, stop := startWorker(r.t, r.wcfgs[i])
	r.workers[i], r.wstops[i] = w, stop
	return w
}

// publish sends batches from..to-1 of every device.
func (r *rig) publish(from, to int) {
	for i := from; i < to; i++ {
		for _, d := range rigDevices {
			r.ag.publish("site", d, encode(r.t, makeBatch(d, 3, uint64(i*rigPerBatch), rigPerBatch)))
		}
	}
}

// check waits until the sink holds every device's readings exactly once,
// with windows and results equal to an uninterrupted computation, and
// that the results topic holds no result revision twice.
func (r *rig) check() {
	t := r.t
	cfg := clusterConfig(t, RoleWorker, "", r.k)
	for _, d := range rigDevices {
		all := makeBatch(d, 3, 0, rigBatches*rigPerBatch).Readings
		waitFor(t, d+" in the sink", func() bool { return readingsStored(t, r.sink.HTTPAddr(), d) >= uint64(len(all)) })
		if got := readingsStored(t, r.sink.HTTPAddr(), d); got != uint64(len(all)) {
			t.Fatalf("%s (partition %d): the sink has %d readings stored, want exactly %d", d,
				readlog.PartitionFor([]byte(d), clusterPartitions), got, len(all))
		}
		checkWindows(t, r.sink.HTTPAddr(), d, all, time.Minute)
		waitForResults(t, r.sink.HTTPAddr(), d, cfg.Pipelines, uninterrupted(t, cfg, d, 3, all))
	}
	r.auditResults()
}

// auditResults reads the results topic as a downstream consumer would
// (read_committed) and fails if a window revision appears twice.
func (r *rig) auditResults() {
	t := r.t
	cfg := clusterConfig(t, RoleWorker, "", r.k)
	// A plain record after the workers' transactions marks each
	// partition's end.
	prod, err := kgo.NewClient(kgo.SeedBrokers(r.k.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for p := range clusterPartitions {
		if err := prod.ProduceSync(context.Background(), &kgo.Record{Topic: cfg.Kafka.ResultsTopic, Partition: int32(p),
			Key: []byte("end-of-audit")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(r.k.ListenAddrs()...), kgo.ConsumeTopics(cfg.Kafka.ResultsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]bool{}
	ended := map[int32]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	records := 0
	for len(ended) < clusterPartitions {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("results topic: end marker of %d of %d partitions read", len(ended), clusterPartitions)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if string(rec.Key) == "end-of-audit" {
				ended[rec.Partition] = true
				return
			}
			fr, err := feed.Decode(rec.Value)
			if err != nil {
				t.Errorf("results topic record %d/%d: %v", rec.Partition, rec.Offset, err)
				return
			}
			if fr.Kind != feed.KindResult {
				return
			}
			res := fr.Result
			id := fmt.Sprintf("%s|%s|%s|%s|%s|%d", res.Pipeline, res.Device, res.Channel, res.Quantity, res.Start.Format(time.RFC3339), res.Revision)
			if seen[id] {
				t.Errorf("results topic: %s committed twice (partition %d offset %d)", id, rec.Partition, rec.Offset)
			}
			seen[id] = true
			records++
		})
	}
	if records == 0 {
		t.Fatal("results topic: no result committed")
	}
}

// TestClusterWorkerLostMidStream: half-way through, the worker owning the
// most partitions disappears without leaving the group (a crash: static
// membership, no leave). Its partitions move to the others once its
// session expires; they restore the partitions' state from the changelog
// (they never owned them), the agents resend everything, and every
// reading lands once, with results equal to an uninterrupted computation
// and no result revision committed twice.
func TestClusterWorkerLostMidStream(t *testing.T) {
	r := newRig(t, mqtttest.Start(t), 2, 3)
	r.publish(0, rigBatches/2)
	r.waitAcked("first half acknowledged", rigBatches/2)
	// Let every worker commit some of it, so the moved partitions have
	// state to restore.
	waitFor(t, "each worker committed", func() bool {
		for _, w := range r.workers {
			if len(w.Owned()) > 0 && stored(w) == 0 {
				return false
			}
		}
		return true
	})
	lost := 0
	for i, w := range r.workers {
		if len(w.Owned()) > len(r.workers[lost].Owned()) {
			lost = i
		}
	}
	moved := r.workers[lost].Owned()
	if len(moved) == 0 {
		t.Fatal("the lost worker owned no partition: nothing moves")
	}
	r.wstops[lost]()
	rest := slices.Delete(slices.Clone(r.workers), lost, lost+1)
	r.publish(rigBatches/2, rigBatches)
	waitFor(t, "its partitions moved to the others", func() bool { return everyPartitionOnce(rest...) })
	// The agents did not get every ack in the crash: they resend all.
	r.publish(0, rigBatches)
	r.waitAcked("every batch acknowledged", rigBatches)
	var restored float64
	for _, w := range rest {
		restored += testutil.ToFloat64(w.m.restored)
	}
	if restored == 0 {
		t.Fatal("no changelog record restored by the new owners")
	}
	// The lost worker comes back on its old disk: it takes partitions
	// again, catching its store up from the changelog (its cache is
	// behind what the others committed meanwhile), and the agents' next
	// resend is recognised there too.
	back := r.restartWorker(lost)
	waitFor(t, "the returning worker owns partitions", func() bool { return len(back.Owned()) > 0 && everyPartitionOnce(r.workers...) })
	dups := func() uint64 {
		var n uint64
		for _, w := range r.workers {
			for _, s := range w.stats() {
				n += s.Duplicates
			}
		}
		return n
	}
	before := dups()
	r.publish(0, rigBatches)
	waitFor(t, "the resend seen as duplicates by its partitions' owners", func() bool {
		return dups() >= before+uint64(len(rigDevices)*rigBatches*rigPerBatch)
	})
	r.check()
}

// TestClusterIntakeLostWorkerAdded: 2 workers run; a third joins
// mid-stream and takes partitions over (they move with their committed
// state: nothing is computed twice or skipped); then an intake node is
// lost and the agents resend everything through the other one. Every
// reading lands once.
func TestClusterIntakeLostWorkerAdded(t *testing.T) {
	r := newRig(t, mqtttest.Start(t), 2, 2)
	third := rigBatches / 3
	r.publish(0, third)
	r.waitAcked("first third acknowledged", third)
	added := r.addWorker()
	waitFor(t, "the new worker owns partitions", func() bool { return len(added.Owned()) > 0 && everyPartitionOnce(r.workers...) })
	r.publish(third, 2*third)
	r.waitAcked("second third acknowledged", 2*third)
	r.istops[0]()
	r.publish(2*third, rigBatches)
	r.resendUntilAcked(rigBatches)
	r.check()
	if stored(added) == 0 {
		t.Fatal("the added worker stored nothing")
	}
}

// TestClusterKafkaOutage: the transaction coordinator refuses two worker
// commits (aborted, redone from the committed state); then every request
// to Kafka fails for a while. No device is acknowledged meanwhile (the
// agents keep their readings); once Kafka answers again, the resent and
// retried batches are stored once.
func TestClusterKafkaOutage(t *testing.T) {
	r := newRig(t, mqtttest.Start(t), 2, 3)
	quarter := rigBatches / 4
	r.publish(0, quarter)
	r.waitAcked("first quarter acknowledged", quarter)
	waitFor(t, "every worker committed", func() bool {
		for _, w := range r.workers {
			if testutil.ToFloat64(w.m.txns) == 0 {
				return false
			}
		}
		return true
	})
	// The transaction coordinator refuses the next two commits (of a
	// worker's data or of a restarted worker's fence): those transactions
	// are aborted and the workers restart from their committed state.
	var refusedCommits atomic.Int64
	r.k.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if refusedCommits.Add(1) == 2 {
			r.k.DropControl() // after this one
		} else {
			r.k.KeepControl()
		}
		resp := req.(*kmsg.EndTxnRequest).ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.InvalidTxnState.Code
		return resp, nil, true
	})
	r.publish(quarter, rigBatches/2)
	r.waitAcked("first half acknowledged", rigBatches/2)
	waitFor(t, "a worker's commit refused and aborted", func() bool {
		var aborted float64
		for _, w := range r.workers {
			aborted += testutil.ToFloat64(w.m.aborted)
		}
		return aborted >= 1 && refusedCommits.Load() >= 2
	})
	before := r.ag.ackCount()
	// The workers may be mid-commit when Kafka goes: their transactions
	// abort and they restart from the committed state once it is back.
	var down atomic.Bool
	var refused atomic.Int64
	down.Store(true)
	r.k.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		r.k.KeepControl()
		if !down.Load() {
			return nil, nil, false
		}
		refused.Add(1)
		return nil, errors.New("kafka unreachable"), true
	})
	r.publish(rigBatches/2, rigBatches)
	waitFor(t, "requests refused", func() bool { return refused.Load() >= 50 })
	if got := r.ag.ackCount(); got != before {
		t.Fatalf("%d acks sent while no request reached Kafka, want none", got-before)
	}
	down.Store(false)
	r.publish(0, rigBatches) // resends after the ack timeout
	r.waitAcked("every batch acknowledged", rigBatches)
	r.check()
}

// TestClusterOneWorkerEqualsThree runs the same stream through a cluster
// with one worker and one with three: their sinks hold the same results.
func TestClusterOneWorkerEqualsThree(t *testing.T) {
	b := mqtttest.Start(t)
	results := func(workers int) map[string]store.WindowResult {
		r := newRig(t, b, 1, workers)
		r.publish(0, rigBatches)
		r.waitAcked("every batch acknowledged", rigBatches)
		r.check()
		out := map[string]store.WindowResult{}
		cfg := clusterConfig(t, RoleWorker, "", r.k)
		for _, d := range rigDevices {
			for _, p := range collectorPipelines(cfg) {
				if err := r.sink.Store().Results(store.ResultQuery{Pipeline: p.Name, Device: d}, func(w *store.WindowResult) error {
					if !w.Provisional {
						out[fmt.Sprintf("%s|%s|%s|%s", w.Pipeline, w.Device, w.Channel, w.Start)] = *w
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, s := range r.istops {
			s()
		}
		for _, s := range r.wstops {
			s()
		}
		r.ag.client.Disconnect(100)
		return out
	}
	one, three := results(1), results(3)
	if len(one) == 0 || len(one) != len(three) {
		t.Fatalf("%d results with one worker, %d with three", len(one), len(three))
	}
	for id, a := range one {
		b, ok := three[id]
		if !ok || a.Count != b.Count || fmt.Sprint(a.Values) != fmt.Sprint(b.Values) {
			t.Fatalf("%s: one worker %+v, three workers %+v", id, a, b)
		}
	}
}

func stored(w *WorkerNode) uint64 {
	var n uint64
	for _, s := range w.stats() {
		n += s.Stored
	}
	return n
}
