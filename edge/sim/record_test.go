package sim

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/wire"
)

// A recorded run holds exactly the truth file's readings, and playing it
// delivers every one of them again, under a fresh sequence epoch.
func TestRecordAndPlay(t *testing.T) {
	broker := mqtttest.Start(t)
	col := startCollector(t, broker.URL())
	var truth, rec bytes.Buffer
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	res, err := Run(context.Background(), Config{MQTTURL: broker.URL(), Site: "rec", Meters: 3, Duration: 20 * time.Minute,
		Interval: 10 * time.Second, Speed: 6000, Start: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
		Faults:  []Fault{{Kind: FaultClockless, Device: "sim-0002", For: 5 * time.Minute}},
		DataDir: t.TempDir(), Truth: &truth, Record: &rec, DrainTimeout: 45 * time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]truthRow{}
	for _, r := range parseTruth(t, truth.Bytes()) {
		want[r.id.device+"/"+r.channel+"/"+r.quantity+"/"+r.time.Format(time.RFC3339Nano)] = r
	}
	var n int
	err = ReadRecording(bytes.NewReader(rec.Bytes()), func(site string, b *wire.Batch) error {
		for _, r := range b.Readings {
			n++
			w, ok := want[b.DeviceId+"/"+r.Channel+"/"+r.Quantity.Name()+"/"+time.Unix(0, r.WallNs).UTC().Format(time.RFC3339Nano)]
			if site != "rec" || !ok || w.value != r.Value || w.id.seq != r.Seq || w.id.epoch != b.SeqEpoch {
				t.Fatalf("recorded %s %v (site %s) is not in the truth file", b.DeviceId, r, site)
			}
		}
		return nil
	})
	if err != nil || uint64(n) != res.Generated || n != len(want) {
		t.Fatalf("recording holds %d readings (%v), truth %d, generated %d", n, err, len(want), res.Generated)
	}

	col.mu.Lock()
	before := len(col.seen)
	col.mu.Unlock()
	pr, err := Play(context.Background(), PlayConfig{MQTTURL: broker.URL(), Recording: bytes.NewReader(rec.Bytes()),
		DataDir: t.TempDir(), Timeout: time.Minute, Logger: quiet})
	if err != nil || pr.Readings != res.Generated || pr.Devices != 3 || pr.Unacked != 0 {
		t.Fatalf("play: %+v, %v", pr, err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if got := len(col.seen) - before; got != n {
		t.Fatalf("play delivered %d new readings, want %d", got, n)
	}
}

// A file that is not a recording, or is cut short, is an error naming the
// problem, never a silent partial play.
func TestReadRecordingRejectsBadFiles(t *testing.T) {
	var rec bytes.Buffer
	r := NewRecorder(&rec, "s")
	r.Write(&wire.Batch{DeviceId: "d1", BootId: "b", SeqEpoch: 1, Readings: []*wire.Reading{{Seq: 1, Channel: "mains",
		Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: 1, WallNs: 1, TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED}}})
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	good := rec.Bytes()
	nop := func(string, *wire.Batch) error { return nil }
	if err := ReadRecording(bytes.NewReader(good), nop); err != nil {
		t.Fatalf("good file: %v", err)
	}
	for name, data := range map[string][]byte{
		"not a recording": []byte("device,channel\n"),
		"truncated":       good[:len(good)-3],
		"garbage frame":   append(append([]byte(nil), good...), 5, 0xff, 0xff, 0xff, 0xff, 0xff),
	} {
		if err := ReadRecording(bytes.NewReader(data), nop); err == nil || !strings.Contains(err.Error(), "recording") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzReadRecording(f *testing.F) {
	var rec bytes.Buffer
	r := NewRecorder(&rec, "site")
	r.Write(&wire.Batch{DeviceId: "d1", BootId: "b", SeqEpoch: 1, Readings: []*wire.Reading{{Seq: 1, Channel: "mains",
		Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: 1, WallNs: 1, TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED}}})
	_ = r.Flush()
	f.Add(rec.Bytes())
	f.Add([]byte(recordMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = ReadRecording(bytes.NewReader(data), func(_ string, b *wire.Batch) error {
			if err := wire.ValidateBatch(b); err != nil {
				t.Fatalf("an invalid batch was passed on: %v", err)
			}
			return nil
		})
	})
}

func TestParseFlagsValues(t *testing.T) {
	fs, err := ParseFaults("offline:5%:2m,drop:sim-0003@90s,clockless:sim-0002:3m")
	if err != nil || len(fs) != 3 || fs[0].Share != 0.05 || fs[0].For != 2*time.Minute || fs[1].Device != "sim-0003" ||
		fs[1].At != 90*time.Second || fs[2].Kind != FaultClockless {
		t.Fatalf("faults %+v, %v", fs, err)
	}
	for _, bad := range []string{"offline:5%", "drop:5%:1m", "melt:5%", "offline:sim-1:2m", "offline:500%:1m", "offline:x%:1m"} {
		if _, err := ParseFaults(bad); err == nil {
			t.Errorf("faults %q accepted", bad)
		}
	}
	j, err := ParseJitter("1s..3s+1ms..100ms")
	if err != nil || j != (Jitter{time.Second, 3 * time.Second, time.Millisecond, 100 * time.Millisecond}) {
		t.Fatalf("jitter %+v, %v", j, err)
	}
	for _, bad := range []string{"3s..1s", "1s", "-1s..1s", "1s..2s+5ms"} {
		if _, err := ParseJitter(bad); err == nil {
			t.Errorf("jitter %q accepted", bad)
		}
	}
	creds, err := parseCredentials(strings.NewReader("# fleet\n\nlab/sim-0001 s3cret\nlab/sim-0002  other \n"), "f")
	if err != nil || creds["lab/sim-0001"] != "s3cret" || creds["lab/sim-0002"] != "other" {
		t.Fatalf("credentials %v, %v", creds, err)
	}
	for _, bad := range []string{"lab/sim-0001", "sim-0001 x", "lab/sim-0001 a\nlab/sim-0001 b", "lab/a/b x"} {
		if _, err := parseCredentials(strings.NewReader(bad), "f"); err == nil || !strings.Contains(err.Error(), "line") {
			t.Errorf("credentials %q: %v", bad, err)
		}
	}
}
