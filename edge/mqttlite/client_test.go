package mqttlite

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
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

func TestPersistentSessionDeliversWhatQueuedWhileAway(t *testing.T) {
	broker := mqtttest.Start(t)
	got := make(chan string, 4)
	sub := connect(t, broker.URL(), "away", Options{})
	if tok := sub.Subscribe("q/1", 1, func(_ string, p []byte) { got <- string(p) }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	sub.Disconnect(100)
	if sub.IsConnectionOpen() {
		t.Fatal("open after Disconnect")
	}
	pub := connect(t, broker.URL(), "pub", Options{})
	if tok := pub.Publish("q/1", 1, false, []byte("while away")); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	// Reconnect without subscribing again: the broker kept the session.
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("reconnect: %v", tok.Error())
	}
	select {
	case m := <-got:
		if m != "while away" {
			t.Fatalf("got %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("queued message not delivered after reconnect")
	}
}

func TestLostConnectionFiresWillAndFailsPending(t *testing.T) {
	broker := mqtttest.Start(t)
	wills := make(chan string, 1)
	watcher := connect(t, broker.URL(), "watcher", Options{})
	if tok := watcher.Subscribe("status/x", 1, func(_ string, p []byte) { wills <- string(p) }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	var conns = make(chan net.Conn, 1)
	lost := make(chan error, 1)
	c := connect(t, broker.URL(), "dying", Options{
		WillTopic: "status/x", WillPayload: []byte("gone"), WillQoS: 1,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, network, addr)
			if err == nil {
				conns <- conn
			}
			return conn, err
		},
		OnConnectionLost: func(err error) { lost <- err },
	})
	conn := <-conns
	// A subscribe whose SUBACK can never arrive: the connection is cut first.
	tok := c.Subscribe("never/acked", 1, func(string, []byte) {})
	conn.Close()
	select {
	case err := <-lost:
		if !errors.Is(err, ErrConnectionLost) {
			t.Fatalf("lost with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnConnectionLost not called")
	}
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatal("pending token not completed by the loss")
	}
	if c.IsConnectionOpen() {
		t.Fatal("open after the loss")
	}
	if err := c.Publish("a", 1, false, nil).Error(); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("publish while down: %v", err)
	}
	select {
	case w := <-wills:
		if w != "gone" {
			t.Fatalf("will %q", w)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the broker did not publish the will")
	}
}

// fakeBroker accepts one connection, answers CONNECT with CONNACK and then
// does what then says.
func fakeBroker(t *testing.T, then func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		if _, err := packets.ReadPacket(conn); err != nil {
			return
		}
		if err := packets.NewControlPacket(packets.Connack).Write(conn); err != nil {
			return
		}
		then(conn)
	}()
	return "tcp://" + ln.Addr().String()
}

func TestUnansweredPingDropsTheConnection(t *testing.T) {
	url := fakeBroker(t, func(conn net.Conn) { _, _ = io.Copy(io.Discard, conn) }) // never answers
	lost := make(chan error, 1)
	c := connect(t, url, "pinger", Options{KeepAlive: 200 * time.Millisecond, PingTimeout: 200 * time.Millisecond,
		OnConnectionLost: func(err error) { lost <- err }})
	select {
	case <-lost:
	case <-time.After(20 * time.Second):
		t.Fatal("connection kept although no PINGRESP came")
	}
	if c.IsConnectionOpen() {
		t.Fatal("open after the ping timeout")
	}
}

func TestGarbageFromTheBrokerDropsTheConnection(t *testing.T) {
	for name, garbage := range map[string][]byte{
		"length over the limit":   {0x30, 0xff, 0xff, 0xff, 0x7f}, // a 256 MiB PUBLISH announced
		"malformed length":        {0x30, 0xff, 0xff, 0xff, 0xff, 0x01},
		"truncated publish topic": {0x32, 0x03, 0x00, 0x09, 'a'},
	} {
		t.Run(name, func(t *testing.T) {
			url := fakeBroker(t, func(conn net.Conn) {
				_, _ = conn.Write(garbage)
				_, _ = io.Copy(io.Discard, conn)
			})
			lost := make(chan error, 1)
			connect(t, url, "victim", Options{OnConnectionLost: func(err error) { lost <- err }})
			select {
			case err := <-lost:
				if !errors.Is(err, ErrConnectionLost) {
					t.Fatalf("lost with %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("malformed packet did not end the connection")
			}
		})
	}
}

func FuzzReadPacket(f *testing.F) {
	f.Add([]byte{0x20, 0x02, 0x00, 0x00})                            // CONNACK
	f.Add([]byte{0x40, 0x02, 0x00, 0x07})                            // PUBACK
	f.Add([]byte{0x32, 0x07, 0x00, 0x01, 'a', 0x00, 0x01, 'x', 'y'}) // PUBLISH QoS 1
	f.Add([]byte{0x90, 0x03, 0x00, 0x01, 0x80})                      // SUBACK refused
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0x7f})
	c := New(Options{MaxPacket: 1 << 10})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(data), 16)
		for range 8 {
			if _, err := c.readPacket(r); err != nil {
				return
			}
		}
	})
}

func TestUnsupportedRequestsFailClearly(t *testing.T) {
	broker := mqtttest.Start(t)
	c := connect(t, broker.URL(), "picky", Options{})
	for name, tok := range map[string]*Token{
		"wildcard": c.Subscribe("a/#", 1, func(string, []byte) {}),
		"qos 2":    c.Publish("a", 2, false, nil),
	} {
		if !tok.WaitTimeout(time.Second) || tok.Error() == nil {
			t.Errorf("%s: no error", name)
		}
	}
	ws := New(Options{URL: "ws://127.0.0.1:1/mqtt", ClientID: "ws"})
	if tok := ws.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() == nil {
		t.Fatal("ws:// accepted")
	}
	closed := New(Options{URL: "tcp://127.0.0.1:1", ClientID: "nobody", ConnectTimeout: 2 * time.Second})
	if tok := closed.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() == nil {
		t.Fatal("connect to a closed port succeeded")
	}
}
