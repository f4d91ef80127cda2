package collector

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gridedge/gridedge/cloud/feed"
	"github.com/gridedge/gridedge/cloud/store"
)

// TestSinkSkipsBadRecordsAndResumes: records the sink cannot use (not
// JSON, another schema version, a late record without its store key) are
// skipped and counted, the good ones stored; a restarted sink resumes from
// the position stored with its data and reads nothing twice.
func TestSinkSkipsBadRecordsAndResumes(t *testing.T) {
	k := kafkaCluster(t)
	cfg := clusterConfig(t, RoleSink, "", k)
	n := startSinkStoppable(t, cfg)
	prod, err := kgo.NewClient(kgo.SeedBrokers(k.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	result := func(rev uint32) []byte {
		v, err := feed.Encode(&feed.Record{V: feed.Version, Kind: feed.KindResult, Result: &store.WindowResult{
			Pipeline: "windows_1m", Device: "m-1", Channel: "mains", Quantity: "active_power", Start: t0, End: t0.Add(time.Minute),
			Revision: rev, Count: int64(rev), Values: map[string]float64{"sum": float64(rev)}}})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	late, err := feed.Encode(&feed.Record{V: feed.Version, Kind: feed.KindLate, Late: &store.LateReading{Pipeline: "windows_1m", Device: "m-1"}})
	if err != nil {
		t.Fatal(err)
	}
	dl, _ := json.Marshal(store.DeadLetter{Reason: "decode", Topic: "gridedge/s/x/data", Received: t0, Payload: []byte{1, 2}})
	kc := cfg.Kafka
	produce := func(recs ...*kgo.Record) {
		if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(&kgo.Record{Topic: kc.ResultsTopic, Value: []byte("not json")},
		&kgo.Record{Topic: kc.ResultsTopic, Value: []byte(`{"v":2,"kind":"result","result":{}}`)},
		&kgo.Record{Topic: kc.LateTopic, Value: late},
		&kgo.Record{Topic: kc.ResultsTopic, Value: result(1)},
		&kgo.Record{Topic: kc.DeadLetterTopic, Value: dl})
	waitFor(t, "the good records stored", func() bool { return sinkResults(t, n.sink) == 1 && sinkDeadLetters(t, n.sink) == 1 })
	waitFor(t, "the bad ones counted", func() bool { return testutil.ToFloat64(n.sink.skipped) == 3 })
	n.stop()

	n = startSinkStoppable(t, cfg)
	produce(&kgo.Record{Topic: kc.ResultsTopic, Value: result(2)})
	waitFor(t, "revision 2 stored", func() bool {
		var rev uint32
		_ = n.sink.Store().Results(store.ResultQuery{Pipeline: "windows_1m", Device: "m-1"}, func(w *store.WindowResult) error {
			rev = w.Revision
			return nil
		})
		return rev == 2
	})
	if s := testutil.ToFloat64(n.sink.skipped); s != 0 {
		t.Fatalf("the restarted sink skipped %v records: it read the old ones again", s)
	}
	if d := sinkDeadLetters(t, n.sink); d != 1 {
		t.Fatalf("%d dead letters after the restart, want 1", d)
	}
}

type stoppableSink struct {
	sink *SinkNode
	stop func()
}

func startSinkStoppable(t *testing.T, cfg Config) stoppableSink {
	t.Helper()
	n, err := NewSink(cfg, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	return stoppableSink{n, startNode(t, n.Run)}
}

func sinkResults(t *testing.T, n *SinkNode) int {
	c := 0
	if err := n.Store().Results(store.ResultQuery{Pipeline: "windows_1m", Device: "m-1", History: true}, func(*store.WindowResult) error { c++; return nil }); err != nil {
		t.Fatal(err)
	}
	return c
}

func sinkDeadLetters(t *testing.T, n *SinkNode) int {
	c := 0
	if err := n.Store().DeadLetters(0, func(*store.DeadLetter) error { c++; return nil }); err != nil {
		t.Fatal(err)
	}
	return c
}
