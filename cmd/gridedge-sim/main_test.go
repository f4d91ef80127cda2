package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/topic"
	"github.com/gridedge/gridedge/shared/wire"
)

func TestHelpExplainsEveryFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, f := range []string{"-mqtt-url", "-site", "-meters", "-duration", "-speed", "-profile", "-truth", "-data-dir", "-drain-timeout", "-interval"} {
		if !strings.Contains(errOut.String(), f) {
			t.Errorf("help lacks %s", f)
		}
	}
	if code := run(context.Background(), []string{"-speed", "fast"}, &out, &errOut); code != 2 {
		t.Fatalf("bad flag: exit %d, want 2", code)
	}
}

func TestExitsNonZeroWithUnackedPerMeter(t *testing.T) {
	broker := mqtttest.Start(t) // nobody acks
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-mqtt-url", broker.URL(), "-meters", "2", "-duration", "5m", "-interval", "1m",
		"-speed", "3000", "-drain-timeout", "1s", "-data-dir", t.TempDir()}, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"sim-0001: 25 of 25 readings unacknowledged", "sim-0002: 25 of 25 readings unacknowledged"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestExitsZeroWhenEverythingIsAcked(t *testing.T) {
	broker := mqtttest.Start(t)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("collector"))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(100)
	tok := c.Subscribe(topic.Filter(topic.Data), 1, func(c mqtt.Client, m mqtt.Message) {
		b, err := wire.DecodeBatch(m.Payload())
		if err != nil {
			return
		}
		var seqs []uint64
		for _, r := range b.Readings {
			seqs = append(seqs, r.Seq)
		}
		site, device, _, _ := topic.Parse(m.Topic())
		ack, _ := wire.EncodeAck(&wire.Ack{DeviceId: b.DeviceId, SeqEpoch: b.SeqEpoch, Ranges: wire.RangesOf(seqs)})
		c.Publish(topic.For(site, device, topic.Ack), 1, false, ack)
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	truth := filepath.Join(t.TempDir(), "truth.csv")
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-mqtt-url", broker.URL(), "-profile", "replay", "-replay-file", "../../testdata/household/uci-household-2006-12.csv",
		"-duration", "1h", "-speed", "100000", "-drain-timeout", "45s", "-truth", truth}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	data, err := os.ReadFile(truth)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(data), "\n"); lines != 1+60*4 {
		t.Fatalf("truth file has %d lines, want header + 240", lines)
	}
	if !strings.Contains(out.String(), "240 readings generated, 0 unacknowledged") {
		t.Fatalf("summary: %s", out.String())
	}
}

// Nonsense flags are refused before anything starts: exit 2, one line
// naming the flag, no summary of a run that never happened.
func TestRefusesNonsenseFlagsBeforeStarting(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-meters", "0"}, "meters: must be 1..200000, got 0"},
		{[]string{"-meters", "-3"}, "meters"},
		{[]string{"-speed", "-1"}, "speed: must be > 0"},
		{[]string{"-speed", "0"}, "speed"},
		{[]string{"-interval", "-1s"}, "interval"},
		{[]string{"-duration", "-1h"}, "duration"},
		{[]string{"-buffer", "cloud"}, "buffer"},
		{[]string{"-ramp", "100"}, "ramp"},
		{[]string{"-jitter", "3s..1s"}, "jitter"},
		{[]string{"-faults", "offline:5%"}, "duration must be > 0"},
		{[]string{"-reversed-pairs", "2"}, "reversed pairs"},
		{[]string{"-credentials", "/nonexistent/creds"}, "credentials"},
	} {
		var out, errOut bytes.Buffer
		// A broker that does not exist: reaching it would hang, not exit 2.
		args := append([]string{"-mqtt-url", "tcp://127.0.0.1:1", "-data-dir", t.TempDir()}, tc.args...)
		code := run(context.Background(), args, &out, &errOut)
		if code != 2 || out.Len() != 0 || !strings.Contains(errOut.String(), tc.want) ||
			strings.Count(strings.TrimSpace(errOut.String()), "\n") != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2, no summary, one line with %q", tc.args, code, out.String(), errOut.String(), tc.want)
		}
	}
}

// An interrupted run's summary says how far it got, not the range it was
// asked for.
func TestInterruptedSummarySaysWhatRan(t *testing.T) {
	broker := mqtttest.Start(t)
	truth := filepath.Join(t.TempDir(), "truth.csv")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Interrupt once some readings exist: a day at speed 240 would
		// take six real minutes.
		for {
			if b, err := os.ReadFile(truth); err == nil && strings.Count(string(b), "\n") > 1 {
				cancel()
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"-mqtt-url", broker.URL(), "-meters", "2", "-duration", "24h", "-interval", "10s",
		"-speed", "240", "-start", "2026-03-01T00:00:00Z", "-truth", truth}, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out.String(), errOut.String())
	}
	summary := out.String()
	if !strings.Contains(summary, "interrupted: simulated 2026-03-01T00:00:00Z .. ") || strings.Contains(summary, "2026-03-02T00:00:00Z ..") ||
		!strings.Contains(summary, "of the 24h0m0s planned") {
		t.Fatalf("summary does not say what ran:\n%s", summary)
	}
	// The end it names is before the planned one.
	i := strings.Index(summary, ".. ") + 3
	end, err := time.Parse(time.RFC3339, summary[i:i+20])
	if err != nil || !end.Before(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("summary end %q (%v): want before the planned end", summary[i:i+20], err)
	}
}
