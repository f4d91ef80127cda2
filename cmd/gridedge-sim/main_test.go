package main

import (
	"bytes"
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
	if code := run([]string{"-h"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, f := range []string{"-mqtt-url", "-site", "-meters", "-duration", "-speed", "-profile", "-truth", "-data-dir", "-drain-timeout", "-interval"} {
		if !strings.Contains(errOut.String(), f) {
			t.Errorf("help lacks %s", f)
		}
	}
	if code := run([]string{"-speed", "fast"}, &out, &errOut); code != 2 {
		t.Fatalf("bad flag: exit %d, want 2", code)
	}
}

func TestExitsNonZeroWithUnackedPerMeter(t *testing.T) {
	broker := mqtttest.Start(t) // nobody acks
	var out, errOut bytes.Buffer
	code := run([]string{"-mqtt-url", broker.URL(), "-meters", "2", "-duration", "5m", "-interval", "1m",
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
	code := run([]string{"-mqtt-url", broker.URL(), "-profile", "replay", "-replay-file", "../../testdata/household/uci-household-2006-12.csv",
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
