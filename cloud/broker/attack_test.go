package broker

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/gridedge/gridedge/cloud/devices"
	"github.com/gridedge/gridedge/shared/mqtttest"
	"github.com/gridedge/gridedge/shared/topic"
)

const waitLimit = 20 * time.Second

// target is a broker under attack: where devices and the collector connect
// and the credentials provisioned for the attack.
type target struct {
	deviceURL    string
	deviceTLS    *tls.Config
	collectorURL string
	collector    [2]string         // username, password
	secrets      map[string]string // device username → secret
	revoke       func(t *testing.T, username string)
	// Whether the broker also drops a connected client when it is revoked
	// (the embedded broker does; Mosquitto applies a reload to new
	// connections only).
	dropsRevokedConnections bool
}

// The devices every attack target provisions.
const (
	devA = "site-1/meter-a" // the attacker, a legitimate device
	devB = "site-1/meter-b" // the victim
	devC = "site-2/meter-c" // revoked during the test
)

func embeddedTarget(t *testing.T) target {
	dir := t.TempDir()
	path := filepath.Join(dir, "devices")
	names := []string{devA, devB, devC}
	secrets, err := devices.Add(path, devices.MinCost, names...)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := devices.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ca := mqtttest.WriteCerts(t, filepath.Join(dir, "certs"))
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "certs", "server.crt"), filepath.Join(dir, "certs", "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Start("127.0.0.1:0", WithRegistry(reg), WithLogger(testLogger(t)),
		WithTLSListener("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	user, pass := b.CollectorCredentials()
	_, port, _ := net.SplitHostPort(b.TLSAddr())
	return target{
		deviceURL: "ssl://localhost:" + port, deviceTLS: &tls.Config{RootCAs: pool, ServerName: "localhost"},
		collectorURL: b.URL(), collector: [2]string{user, pass},
		secrets: map[string]string{devA: secrets[0], devB: secrets[1], devC: secrets[2]},
		revoke: func(t *testing.T, u string) {
			if err := devices.Revoke(path, u); err != nil {
				t.Fatal(err)
			}
		},
		dropsRevokedConnections: true,
	}
}

func mosquittoTarget(t *testing.T) target {
	conf, err := os.ReadFile("../../deploy/mosquitto/mosquitto.conf")
	if err != nil {
		t.Fatal(err)
	}
	acl, err := os.ReadFile("../../deploy/mosquitto/acl")
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]string{"collector": "collector-secret"}
	for _, d := range []string{devA, devB, devC} {
		users[d] = "secret-of-" + d
	}
	b := mqtttest.StartShipped(t, conf, mqtttest.ShippedFiles{
		Paths: map[string]string{"/var/lib/mosquitto/": "data/", "/etc/mosquitto/certs/": "certs/", "/etc/mosquitto/": ""},
		ACL:   acl, Users: users,
	})
	secrets := map[string]string{}
	for _, d := range []string{devA, devB, devC} {
		secrets[d] = users[d]
	}
	return target{
		deviceURL: b.TLSURL(), deviceTLS: b.TLSConfig(),
		collectorURL: b.PlainURL(), collector: [2]string{"collector", users["collector"]},
		secrets: secrets,
		revoke: func(t *testing.T, u string) {
			b.RemoveUser(u)
			b.Reload()
		},
	}
}

// TestAttacksOnEmbeddedBroker runs every attack against the embedded broker
// with a device registry (devices on its TLS listener).
func TestAttacksOnEmbeddedBroker(t *testing.T) { runAttacks(t, embeddedTarget(t)) }

// TestAttacksOnShippedMosquitto runs every attack against Debian's
// Mosquitto started with deploy/mosquitto (devices on its TLS listener, the
// collector on the local one).
func TestAttacksOnShippedMosquitto(t *testing.T) { runAttacks(t, mosquittoTarget(t)) }

func runAttacks(t *testing.T, tg target) {
	a := func(t *testing.T) *client { return tg.device(t, devA, devA) }
	t.Run("anonymous and wrong secrets are refused", func(t *testing.T) {
		for _, c := range []struct{ id, user, pass string }{
			{"anon", "", ""},
			{devA, devA, "wrong"},
			{devA, devA, tg.secrets[devB]},
			{devB, devB, tg.secrets[devA]},
			{"collector-x", tg.collector[0], "wrong"},
			{devA, "site-1/unknown", tg.secrets[devA]},
		} {
			if _, err := dial(t, tg.deviceURL, tg.deviceTLS, c.id, c.user, c.pass); err == nil {
				t.Errorf("user %q with client id %q and a wrong or no secret connected", c.user, c.id)
			}
		}
	})
	t.Run("a device cannot publish as another", func(t *testing.T) {
		col := tg.collectorClient(t)
		attacker := a(t)
		attacker.publishAndSettle(t, topic.For("site-1", "meter-b", topic.Data), "forged-data", false)
		attacker = a(t)
		attacker.publishAndSettle(t, topic.For("site-1", "meter-b", topic.Status), "forged-status", true)
		victim := tg.device(t, devB, devB)
		victim.publishAndSettle(t, topic.For("site-1", "meter-b", topic.Data), "barrier", false)
		col.expectOnly(t, topic.For("site-1", "meter-b", topic.Data), "barrier", func(m paho.Message) bool {
			return strings.HasPrefix(string(m.Payload()), "forged")
		})
	})
	t.Run("a device cannot forge another's acks", func(t *testing.T) {
		col := tg.collectorClient(t)
		victim := tg.device(t, devB, devB)
		victim.subscribe(t, topic.For("site-1", "meter-b", topic.Ack))
		a(t).publishAndSettle(t, topic.For("site-1", "meter-b", topic.Ack), "forged-ack", false)
		col.publishAndSettle(t, topic.For("site-1", "meter-b", topic.Ack), "real-ack", false)
		victim.expectOnly(t, topic.For("site-1", "meter-b", topic.Ack), "real-ack", func(m paho.Message) bool {
			return string(m.Payload()) == "forged-ack"
		})
	})
	t.Run("a device cannot read another's topics", func(t *testing.T) {
		col := tg.collectorClient(t)
		victim := tg.device(t, devB, devB)
		victim.subscribe(t, topic.For("site-1", "meter-b", topic.Ack))
		victim.publishAndSettle(t, topic.For("site-1", "meter-b", topic.Status), "b-status", true)
		attacker := a(t)
		for _, f := range []string{
			topic.For("site-1", "meter-b", topic.Ack), topic.For("site-1", "meter-b", topic.Data),
			topic.For("site-1", "meter-b", topic.Status), "gridedge/v1/+/+/ack", "gridedge/#", "#",
			topic.Shared("gridedge", topic.Data), topic.Filter(topic.Status), "$SYS/#",
		} {
			attacker.trySubscribe(t, f)
		}
		own := topic.For("site-1", "meter-a", topic.Ack)
		attacker.subscribe(t, own)
		victim.publishAndSettle(t, topic.For("site-1", "meter-b", topic.Data), "b-data", false)
		col.publishAndSettle(t, topic.For("site-1", "meter-b", topic.Ack), "b-ack", false)
		col.publishAndSettle(t, own, "a-ack", false)
		attacker.expectOnly(t, own, "a-ack", func(m paho.Message) bool { return m.Topic() != own })
	})
	t.Run("a device cannot take the collector's or another device's client id", func(t *testing.T) {
		col := tg.collectorClient(t)
		victim := tg.device(t, devB, devB)
		victim.subscribe(t, topic.For("site-1", "meter-b", topic.Ack))
		for _, id := range []string{col.id, devB} {
			// Refused (embedded broker) or connected under its own
			// username (Mosquitto's use_username_as_clientid): either
			// way nobody is kicked off.
			if c, err := dial(t, tg.deviceURL, tg.deviceTLS, id, devA, tg.secrets[devA]); err == nil {
				c.c.Disconnect(0)
			}
		}
		victim.publishAndSettle(t, topic.For("site-1", "meter-b", topic.Data), "after-takeover", false)
		col.expectOnly(t, topic.For("site-1", "meter-b", topic.Data), "after-takeover", nil)
		col.publishAndSettle(t, topic.For("site-1", "meter-b", topic.Ack), "still-connected", false)
		victim.expectOnly(t, topic.For("site-1", "meter-b", topic.Ack), "still-connected", nil)
		for _, c := range []*client{col, victim} {
			select {
			case err := <-c.lost:
				t.Fatalf("%s lost its connection: %v", c.id, err)
			default:
			}
		}
	})
	t.Run("a device's last will cannot name another's topic", func(t *testing.T) {
		col := tg.collectorClient(t)
		u, _ := url.Parse(tg.deviceURL)
		// The forged will, then a legitimate one from another device as
		// the barrier: the broker handles the first connection's end
		// before it answers the second's CONNECT.
		forged := rawConnect(t, u.Host, tg.deviceTLS, devA, tg.secrets[devA], topic.For("site-1", "meter-b", topic.Status), "forged-will")
		forged.Close()
		legit := rawConnect(t, u.Host, tg.deviceTLS, devC, tg.secrets[devC], topic.For("site-2", "meter-c", topic.Status), "legit-will")
		legit.Close()
		col.expectOnly(t, topic.For("site-2", "meter-c", topic.Status), "legit-will", func(m paho.Message) bool {
			return string(m.Payload()) == "forged-will"
		})
	})
	t.Run("an oversized packet is refused", func(t *testing.T) {
		col := tg.collectorClient(t)
		attacker := a(t)
		attacker.publishAndSettle(t, topic.For("site-1", "meter-a", topic.Data), strings.Repeat("x", 300<<10), false)
		tg.device(t, devA, devA).publishAndSettle(t, topic.For("site-1", "meter-a", topic.Data), "small", false)
		col.expectOnly(t, topic.For("site-1", "meter-a", topic.Data), "small", func(m paho.Message) bool { return len(m.Payload()) > 1000 })
	})
	t.Run("a revoked device is refused", func(t *testing.T) {
		connected := tg.device(t, devC, devC)
		tg.revoke(t, devC)
		deadline := time.Now().Add(waitLimit)
		for {
			c, err := dial(t, tg.deviceURL, tg.deviceTLS, devC, devC, tg.secrets[devC])
			if err != nil {
				break
			}
			c.c.Disconnect(0)
			if time.Now().After(deadline) {
				t.Fatal("revoked device still connects")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if tg.dropsRevokedConnections {
			// A connection made before the revocation ends at its next
			// publish.
			connected.c.Publish(topic.For("site-2", "meter-c", topic.Data), 1, false, "after-revoke")
			select {
			case <-connected.lost:
			case <-time.After(waitLimit):
				t.Fatal("revoked device kept its connection")
			}
		}
	})
}

// client is a paho client that records what it receives and whether it
// lost its connection. It never reconnects by itself.
type client struct {
	id   string
	c    paho.Client
	msgs chan paho.Message
	lost chan error
}

func dial(t *testing.T, broker string, tc *tls.Config, id, user, pass string) (*client, error) {
	t.Helper()
	cl := &client{id: id, msgs: make(chan paho.Message, 1000), lost: make(chan error, 1)}
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectRetry(false).SetOrderMatters(true).SetConnectTimeout(10 * time.Second).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { cl.msgs <- m }).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case cl.lost <- err:
			default:
			}
		})
	if user != "" {
		o.SetUsername(user).SetPassword(pass)
	}
	if tc != nil {
		o.SetTLSConfig(tc)
	}
	cl.c = paho.NewClient(o)
	tok := cl.c.Connect()
	if !tok.WaitTimeout(waitLimit) {
		return nil, fmt.Errorf("connect %s: timed out", id)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { cl.c.Disconnect(0) })
	return cl, nil
}

func (tg target) device(t *testing.T, user, id string) *client {
	t.Helper()
	c, err := dial(t, tg.deviceURL, tg.deviceTLS, id, user, tg.secrets[user])
	if err != nil {
		t.Fatalf("device %s: %v", user, err)
	}
	return c
}

// collectorClient connects as the collector and subscribes to every
// device's data (shared) and status.
func (tg target) collectorClient(t *testing.T) *client {
	t.Helper()
	c, err := dial(t, tg.collectorURL, nil, fmt.Sprintf("collector-test-%d", time.Now().UnixNano()), tg.collector[0], tg.collector[1])
	if err != nil {
		t.Fatalf("collector: %v", err)
	}
	c.subscribe(t, topic.Shared("gridedge", topic.Data))
	c.subscribe(t, topic.Filter(topic.Status))
	return c
}

func (c *client) subscribe(t *testing.T, filter string) {
	t.Helper()
	tok := c.c.Subscribe(filter, 1, nil)
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("%s subscribe %s: %v", c.id, filter, tok.Error())
	}
	if code := tok.(*paho.SubscribeToken).Result()[filter]; code >= 0x80 {
		t.Fatalf("%s subscribe %s refused (0x%x)", c.id, filter, code)
	}
}

// trySubscribe subscribes and waits for the broker's answer, granted or not.
func (c *client) trySubscribe(t *testing.T, filter string) {
	t.Helper()
	if tok := c.c.Subscribe(filter, 1, nil); !tok.WaitTimeout(waitLimit) {
		t.Fatalf("%s subscribe %s: no answer", c.id, filter)
	}
}

// publishAndSettle publishes at QoS 1 and returns once the broker has
// handled the message: it answered (PUBACK, whatever its reason code) or
// closed the connection.
func (c *client) publishAndSettle(t *testing.T, tp, payload string, retain bool) {
	t.Helper()
	tok := c.c.Publish(tp, 1, retain, payload)
	select {
	case <-tok.Done():
	case err := <-c.lost:
		c.lost <- err
	case <-time.After(waitLimit):
		t.Fatalf("%s publish on %s: no answer and no disconnect", c.id, tp)
	}
}

// expectOnly waits for payload on topic tp and fails if a message for
// which forbidden is true arrives first.
func (c *client) expectOnly(t *testing.T, tp, payload string, forbidden func(paho.Message) bool) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case m := <-c.msgs:
			if forbidden != nil && forbidden(m) {
				t.Fatalf("%s received %q on %s", c.id, truncate(m.Payload()), m.Topic())
			}
			if m.Topic() == tp && string(m.Payload()) == payload {
				return
			}
		case <-deadline:
			t.Fatalf("%s: %q on %s never arrived", c.id, payload, tp)
		}
	}
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// rawConnect sends an MQTT 3.1.1 CONNECT with a retained QoS 1 last will
// and returns the open connection once the broker has answered (accepted
// or refused), so the caller can end it without a DISCONNECT, as a crash
// would, which makes the broker publish the will.
func rawConnect(t *testing.T, addr string, tc *tls.Config, user, pass, willTopic, will string) net.Conn {
	t.Helper()
	var conn net.Conn
	var err error
	if tc != nil {
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: waitLimit}, "tcp", addr, tc)
	} else {
		conn, err = net.DialTimeout("tcp", addr, waitLimit)
	}
	if err != nil {
		t.Fatal(err)
	}
	str := func(b *bytes.Buffer, s string) {
		_ = binary.Write(b, binary.BigEndian, uint16(len(s)))
		b.WriteString(s)
	}
	var body bytes.Buffer
	str(&body, "MQTT")
	body.WriteByte(4)                                    // protocol level 3.1.1
	body.WriteByte(0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 2) // username, password, will retain, will QoS 1, will, clean session
	_ = binary.Write(&body, binary.BigEndian, uint16(60))
	str(&body, user) // client id = username
	str(&body, willTopic)
	str(&body, will)
	str(&body, user)
	str(&body, pass)
	pkt := []byte{0x10}
	for n := body.Len(); ; {
		b := byte(n % 128)
		if n /= 128; n > 0 {
			b |= 0x80
		}
		pkt = append(pkt, b)
		if n == 0 {
			break
		}
	}
	pkt = append(pkt, body.Bytes()...)
	_ = conn.SetDeadline(time.Now().Add(waitLimit))
	if _, err := conn.Write(pkt); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil && ack[0] == 0 {
		// A broker may refuse by closing the connection; either way it
		// has handled the CONNECT.
		return conn
	}
	return conn
}
