package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/gridedge/gridedge/cloud/collector"
	"github.com/gridedge/gridedge/edge/sim"
	"github.com/gridedge/gridedge/shared/poll"
)

// The one-command start, authenticated: meters provisioned with `devices
// add -secrets-out` run the real agent code through the collector's
// embedded broker and every reading is acked; after `devices revoke` a
// meter cannot deliver anything.
func TestProvisionedMetersDeliverThroughTheEmbeddedBroker(t *testing.T) {
	dir := t.TempDir()
	data, secrets := filepath.Join(dir, "data"), filepath.Join(dir, "sims.txt")
	var out, errs bytes.Buffer
	if err := runDevices([]string{"add", "-data-dir", data, "-cost", "4", "-secrets-out", secrets, "sim/sim-0001", "sim/sim-0002"}, &out, &errs); err != nil {
		t.Fatalf("devices add: %v\n%s", err, errs.String())
	}
	if out.Len() != 0 || !strings.Contains(errs.String(), "added 2 identities") {
		t.Fatalf("with -secrets-out the secrets must go to the file only: stdout %q stderr %q", out.String(), errs.String())
	}
	out.Reset()
	if err := runDevices([]string{"list", "-data-dir", data}, &out, io.Discard); err != nil || out.String() != "sim/sim-0001\tdevice\nsim/sim-0002\tdevice\n" {
		t.Fatalf("devices list: %q %v", out.String(), err)
	}

	cfg := collector.DefaultConfig()
	cfg.EmbeddedBroker, cfg.HTTPAddr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", data
	c, err := collector.New(cfg, collector.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-c.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("collector did not subscribe to its own embedded broker")
	}
	creds, err := sim.ReadCredentials(secrets)
	if err != nil {
		t.Fatal(err)
	}
	simCfg := sim.Config{MQTTURL: c.MQTTURL(), Meters: 2, Duration: 20 * time.Minute, Speed: 3600,
		DataDir: filepath.Join(dir, "sim"), Credentials: creds, AckTimeout: 2 * time.Second, DrainTimeout: time.Minute,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	res, err := sim.Run(context.Background(), simCfg)
	if err != nil || res.Unacked != 0 || res.Generated == 0 {
		t.Fatalf("provisioned meters: %d generated, %d unacked: %v", res.Generated, res.Unacked, err)
	}

	if err := runDevices([]string{"revoke", "-data-dir", data, "sim/sim-0002"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	// The broker rereads the file within a second: wait until it refuses.
	poll.Until(t, 30*time.Second, "the revoked meter to be refused", func() bool {
		cl := paho.NewClient(paho.NewClientOptions().AddBroker(c.MQTTURL()).SetClientID("sim/sim-0002").
			SetUsername("sim/sim-0002").SetPassword(creds["sim/sim-0002"]).SetAutoReconnect(false))
		tok := cl.Connect()
		if tok.WaitTimeout(10*time.Second) && tok.Error() != nil {
			return true
		}
		cl.Disconnect(0)
		return false
	})
	simCfg.Meters, simCfg.DrainTimeout, simCfg.DataDir = 2, 3*time.Second, filepath.Join(dir, "sim2")
	res, err = sim.Run(context.Background(), simCfg)
	if err == nil || res.Unacked == 0 {
		t.Fatalf("a revoked meter delivered everything: %d unacked, %v", res.Unacked, err)
	}
	for _, m := range res.Meters {
		if m.Device == "sim-0001" && m.Unacked != 0 {
			t.Fatalf("the meter still provisioned has %d unacked readings", m.Unacked)
		}
		if m.Device == "sim-0002" && m.Unacked != int64(m.Generated) {
			t.Fatalf("the revoked meter got %d of %d readings acked", int64(m.Generated)-m.Unacked, m.Generated)
		}
	}
}
