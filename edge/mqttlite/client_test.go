package mqttlite

import (
	"testing"
	"time"

	"github.com/gridedge/gridedge/shared/mqtttest"
)

func connect(t *testing.T, url, id string, o Options) *Client {
	t.Helper()
	o.URL, o.ClientID = url, id
	c := New(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func TestPublishSubscribeRoundTrip(t *testing.T) {
	broker := mqtttest.Start(t)
	got := make(chan string, 4)
	sub := connect(t, broker.URL(), "sub", Options{KeepAlive: 30 * time.Second})
	tok := sub.Subscribe("a/b", 1, func(topic string, payload []byte) { got <- topic + "=" + string(payload) })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	pub := connect(t, broker.URL(), "pub", Options{KeepAlive: 30 * time.Second})
	tok = pub.Publish("a/b", 1, false, []byte("hello"))
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case m := <-got:
		if m != "a/b=hello" {
			t.Fatalf("got %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
	}
}
