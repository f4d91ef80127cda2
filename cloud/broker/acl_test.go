package broker

import (
	"testing"

	"github.com/gridedge/gridedge/cloud/devices"
)

func TestTopicRules(t *testing.T) {
	dev := devices.Identity{Username: "s/d", Site: "s", Device: "d"}
	col := devices.Identity{Username: "collector"}
	for _, c := range []struct {
		id          devices.Identity
		topic       string
		write, read bool
	}{
		{dev, "gridedge/v1/s/d/data", true, false},
		{dev, "gridedge/v1/s/d/status", true, false},
		{dev, "gridedge/v1/s/d/ack", false, true},
		{dev, "gridedge/v1/s/e/data", false, false},
		{dev, "gridedge/v1/t/d/data", false, false},
		{dev, "gridedge/v1/s/e/ack", false, false},
		{dev, "gridedge/v1/s/+/ack", false, false},
		{dev, "gridedge/v1/s/d/#", false, false},
		{dev, "#", false, false},
		{col, "gridedge/v1/s/d/ack", true, false},
		{col, "gridedge/v1/s/d/data", false, true},
		{col, "gridedge/v1/+/+/data", false, true},
		{col, "gridedge/v1/+/+/status", false, true},
		{col, "$share/gridedge/gridedge/v1/+/+/data", false, true},
		{col, "$share//gridedge/v1/+/+/data", false, false},
		{col, "$share/g+/gridedge/v1/+/+/data", false, false},
		{col, "gridedge/v1/+/+/ack", false, false},
		{col, "gridedge/v1/#", false, false},
		{col, "gridedge/v1/+/+/+", false, false},
		{col, "gridedge/v1/+/+/data/x", false, false},
		{col, "gridedge/v1/+/+/+/ack", false, false},
		{col, "$SYS/#", false, false},
	} {
		if got := mayPublish(c.id, c.topic); got != c.write {
			t.Errorf("%s publish %s = %v, want %v", c.id.Username, c.topic, got, c.write)
		}
		if got := mayRead(c.id, c.topic); got != c.read {
			t.Errorf("%s read %s = %v, want %v", c.id.Username, c.topic, got, c.read)
		}
	}
}

func TestStartNeedsAuthenticationOrAnExplicitChoice(t *testing.T) {
	if _, err := Start("127.0.0.1:0"); err == nil {
		t.Fatal("started without a registry or anonymous access")
	}
	reg, err := devices.Open(t.TempDir() + "/devices")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Start("127.0.0.1:0", WithRegistry(reg), WithAnonymous()); err == nil {
		t.Fatal("started with both a registry and anonymous access")
	}
	if _, err := Start("127.0.0.1:0", WithRegistry(reg), WithMaxPacketSize(10)); err == nil {
		t.Fatal("started with a 10-byte packet limit")
	}
}

func TestConfigValidateNamesTheField(t *testing.T) {
	for field, mutate := range map[string]func(*Config){
		"broker.max_packet_bytes": func(c *Config) { c.MaxPacketBytes = 1 },
		"broker.session_expiry":   func(c *Config) { c.SessionExpiry = 0 },
		"broker.tls_listener":     func(c *Config) { c.TLSListener = ":8883" },
		"broker.allow_anonymous":  func(c *Config) { c.AllowAnonymous, c.DevicesFile = true, "/x" },
	} {
		c := DefaultConfig()
		mutate(&c)
		if err := c.Validate(); err == nil || err.Error()[:len(field)] != field {
			t.Errorf("%s: %v", field, err)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}
