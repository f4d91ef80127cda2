package sim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/topic"
	"github.com/gridedge/gridedge/shared/wire"
)

type readingID struct {
	device string
	epoch  uint64
	seq    uint64
}

// collector acks every batch and remembers what it stored.
type collector struct {
	mu   sync.Mutex
	seen map[readingID]*wire.Reading
}

func startCollector(t *testing.T, url string) *collector {
	t.Helper()
	col := &collector{seen: map[readingID]*wire.Reading{}}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("collector").SetOrderMatters(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(topic.Filter(topic.Data), 1, func(c mqtt.Client, m mqtt.Message) {
		b, err := wire.DecodeBatch(m.Payload())
		if err != nil {
			t.Errorf("bad batch: %v", err)
			return
		}
		var seqs []uint64
		col.mu.Lock()
		for _, r := range b.Readings {
			seqs = append(seqs, r.Seq)
			col.seen[readingID{b.DeviceId, b.SeqEpoch, r.Seq}] = r
		}
		col.mu.Unlock()
		site, device, _, _ := topic.Parse(m.Topic())
		ack, _ := wire.EncodeAck(&wire.Ack{DeviceId: b.DeviceId, SeqEpoch: b.SeqEpoch, Ranges: wire.RangesOf(seqs)})
		c.Publish(topic.For(site, device, topic.Ack), 1, false, ack)
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	return col
}

type truthRow struct {
	id       readingID
	channel  string
	quantity string
	time     time.Time
	value    float64
}

func parseTruth(t *testing.T, data []byte) []truthRow {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != strings.Join(TruthHeader, ",") {
		t.Fatalf("truth header %v", recs[0])
	}
	var out []truthRow
	for _, r := range recs[1:] {
		epoch, err1 := strconv.ParseUint(r[3], 10, 64)
		seq, err2 := strconv.ParseUint(r[4], 10, 64)
		tm, err3 := time.Parse(time.RFC3339Nano, r[5])
		v, err4 := strconv.ParseFloat(r[6], 64)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			t.Fatalf("truth row %v: %v", r, err)
		}
		out = append(out, truthRow{readingID{r[0], epoch, seq}, r[1], r[2], tm, v})
	}
	return out
}

func TestHouseholdRunDeliversEverything(t *testing.T) {
	broker := mqtttest.Start(t)
	col := startCollector(t, broker.URL())
	var truth bytes.Buffer
	start := time.Date(2026, 1, 5, 6, 0, 0, 0, time.UTC)
	res, err := Run(context.Background(), Config{
		MQTTURL: broker.URL(), Site: "lab", Meters: 3, Start: start, Duration: time.Hour,
		Speed: 3600 * 10, Interval: 10 * time.Second, DataDir: t.TempDir(), Truth: &truth, DrainTimeout: 45 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	// 360 samples per channel; mains has power and energy: 5 readings a sample.
	if want := uint64(3 * 360 * 5); res.Generated != want || res.Unacked != 0 {
		t.Fatalf("generated %d (want %d), unacked %d", res.Generated, want, res.Unacked)
	}
	rows := parseTruth(t, truth.Bytes())
	if uint64(len(rows)) != res.Generated {
		t.Fatalf("truth has %d rows, generated %d", len(rows), res.Generated)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	lastEnergy := map[string]float64{}
	for _, r := range rows {
		got, ok := col.seen[r.id]
		if !ok {
			t.Fatalf("truth reading %+v never reached the collector", r.id)
		}
		if got.Value != r.value || got.WallNs != r.time.UnixNano() || got.Channel != r.channel || got.Quantity.Name() != r.quantity {
			t.Fatalf("collector has %v, truth %+v", got, r)
		}
		if r.time.Before(start) || !r.time.Before(start.Add(time.Hour)) || r.time.UnixNano()%int64(10*time.Second) != 0 {
			t.Fatalf("sample time %v not on the 10 s grid within the run", r.time)
		}
		if r.quantity == "energy" {
			if r.value < lastEnergy[r.id.device] {
				t.Fatalf("energy counter of %s went backwards", r.id.device)
			}
			lastEnergy[r.id.device] = r.value
		}
	}
	if len(col.seen) != len(rows) {
		t.Fatalf("collector stored %d readings the truth file does not list", len(col.seen)-len(rows))
	}
}

func TestReplayValuesEqualTheFile(t *testing.T) {
	broker := mqtttest.Start(t)
	startCollector(t, broker.URL())
	file := "../../" + DefaultReplayFile
	var truth bytes.Buffer
	res, err := Run(context.Background(), Config{
		MQTTURL: broker.URL(), Meters: 1, Profile: ProfileReplay, ReplayFile: file, Duration: 6 * time.Hour,
		Speed: 3600 * 100, DataDir: t.TempDir(), Truth: &truth, DrainTimeout: 45 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Read the file independently of the replay reader.
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	paris, _ := time.LoadLocation("Europe/Paris")
	want := map[string]float64{}
	sc := bufio.NewScanner(f)
	sc.Scan()
	for sc.Scan() {
		fs := strings.Split(sc.Text(), ";")
		tm, err := time.ParseInLocation("02/01/2006 15:04:05", fs[0]+" "+fs[1], paris)
		if err != nil {
			t.Fatal(err)
		}
		if tm.Sub(res.SimStart) >= 6*time.Hour {
			break
		}
		key := tm.UTC().Format(time.RFC3339)
		for i, col := range []int{2, 6, 7, 8} {
			v, _ := strconv.ParseFloat(fs[col], 64)
			if i == 0 {
				v *= 1000
			} else {
				v *= 60
			}
			want[key+"/"+ReplayChannels[i]] = v
		}
	}
	rows := parseTruth(t, truth.Bytes())
	if len(rows) != 6*60*4 || len(want) != len(rows) {
		t.Fatalf("truth has %d rows, file %d values; want %d", len(rows), len(want), 6*60*4)
	}
	for _, r := range rows {
		w, ok := want[r.time.UTC().Format(time.RFC3339)+"/"+r.channel]
		if !ok || fmt.Sprintf("%.6f", w) != fmt.Sprintf("%.6f", r.value) {
			t.Fatalf("%s %s: replayed %v, file %v (found %v)", r.time, r.channel, r.value, w, ok)
		}
	}
	if first := time.Date(2006, 12, 16, 16, 24, 0, 0, time.UTC); !res.SimStart.Equal(first) {
		t.Fatalf("replay starts %v, want %v", res.SimStart, first)
	}
}

func TestDrainTimeoutReportsUnacked(t *testing.T) {
	broker := mqtttest.Start(t) // no collector: nothing is ever acked
	res, err := Run(context.Background(), Config{
		MQTTURL: broker.URL(), Meters: 2, Duration: 10 * time.Minute, Interval: time.Minute,
		Speed: 6000, DataDir: t.TempDir(), DrainTimeout: time.Second,
	})
	if !errors.Is(err, ErrNotDrained) {
		t.Fatalf("err %v, want ErrNotDrained", err)
	}
	if res.Unacked != int64(res.Generated) || res.Generated != 2*10*5 {
		t.Fatalf("unacked %d of %d generated", res.Unacked, res.Generated)
	}
	if !strings.Contains(err.Error(), "sim-0001: 50") || !strings.Contains(err.Error(), "sim-0002: 50") {
		t.Fatalf("error does not list meters: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := Run(context.Background(), Config{Speed: 0, Profile: "wind"})
	for _, want := range []string{"mqtt url", "speed", "profile"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v does not mention %s", err, want)
		}
	}
}

// A clean restart of the simulator loses nothing in any buffer mode: the
// readings buffered and unacked when the first run is interrupted are
// delivered by the second run on the same data directory, as a gateway's
// own buffer delivers them after a restart.
func TestRestartLosesNothingInAnyBufferMode(t *testing.T) {
	for _, mode := range []string{BufferDisk, BufferShared, BufferMemory} {
		t.Run(mode, func(t *testing.T) {
			broker := mqtttest.Start(t)
			dir := t.TempDir()
			cfg := Config{MQTTURL: broker.URL(), Site: "lab", Meters: 3, Buffer: mode, Duration: time.Hour,
				Interval: 10 * time.Second, Speed: 600, Start: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
				DataDir: dir, DrainTimeout: 45 * time.Second, AckTimeout: 2 * time.Second,
				Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}

			// First run: nobody acks; interrupted once readings are buffered.
			var truth1 syncBuffer
			cfg.Truth = &truth1
			ctx, cancel := context.WithCancel(context.Background())
			cfg.Progress = func(p Progress) {
				if p.Generated >= 60 {
					cancel()
				}
			}
			cfg.ProgressInterval = 20 * time.Millisecond
			res1, err := Run(ctx, cfg)
			cancel()
			if !errors.Is(err, context.Canceled) || !res1.Interrupted || res1.Unacked == 0 {
				t.Fatalf("first run: %v, interrupted %v, unacked %d", err, res1.Interrupted, res1.Unacked)
			}

			// Second run on the same directory, with a collector.
			col := startCollector(t, broker.URL())
			var truth2 syncBuffer
			cfg.Truth, cfg.Progress = &truth2, nil
			cfg.Start, cfg.Duration = cfg.Start.Add(2*time.Hour), 5*time.Minute
			res2, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatalf("second run: %v", err)
			}
			rows := append(parseTruth(t, truth1.Bytes()), parseTruth(t, truth2.Bytes())...)
			if uint64(len(rows)) != res1.Generated+res2.Generated {
				t.Fatalf("truth has %d rows, runs generated %d + %d", len(rows), res1.Generated, res2.Generated)
			}
			col.mu.Lock()
			defer col.mu.Unlock()
			for _, r := range rows {
				if _, ok := col.seen[r.id]; !ok {
					t.Fatalf("%s: reading %+v of the interrupted run never reached the collector", mode, r.id)
				}
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the truth writer's and the test's
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}
