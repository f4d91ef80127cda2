package publish

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/gridedge/gridedge/edge/mqttlite"
)

// session is what the publisher needs of an MQTT client. Two
// implementations: paho's client (the default, what gateways run) and
// mqttlite's (WithLightClient: one goroutine per connection, for
// processes holding thousands of sessions). The publisher's logic is the
// same over both.
type session interface {
	Connect() mqtt.Token
	Subscribe(topic string, qos byte, fn func(topic string, payload []byte)) mqtt.Token
	Publish(topic string, qos byte, retained bool, payload []byte) mqtt.Token
	Disconnect(quiesceMs uint)
	IsConnectionOpen() bool
}

// newSession builds the publisher's MQTT client (not connected).
func (p *Publisher) newSession(tc *tls.Config) session {
	if p.o.light {
		return p.newLightSession(tc)
	}
	return pahoSession{mqtt.NewClient(p.clientOptions(tc))}
}

// pahoSession adapts paho's client to session.
type pahoSession struct{ c mqtt.Client }

func (s pahoSession) Connect() mqtt.Token { return s.c.Connect() }
func (s pahoSession) Subscribe(topic string, qos byte, fn func(string, []byte)) mqtt.Token {
	return s.c.Subscribe(topic, qos, func(_ mqtt.Client, m mqtt.Message) { fn(m.Topic(), m.Payload()) })
}
func (s pahoSession) Publish(topic string, qos byte, retained bool, payload []byte) mqtt.Token {
	return s.c.Publish(topic, qos, retained, payload)
}
func (s pahoSession) Disconnect(quiesceMs uint) { s.c.Disconnect(quiesceMs) }
func (s pahoSession) IsConnectionOpen() bool    { return s.c.IsConnectionOpen() }

// lightSession adapts mqttlite's client to session.
type lightSession struct{ c *mqttlite.Client }

func (s lightSession) Connect() mqtt.Token { return s.c.Connect() }
func (s lightSession) Subscribe(topic string, qos byte, fn func(string, []byte)) mqtt.Token {
	return s.c.Subscribe(topic, qos, fn)
}
func (s lightSession) Publish(topic string, qos byte, retained bool, payload []byte) mqtt.Token {
	return s.c.Publish(topic, qos, retained, payload)
}
func (s lightSession) Disconnect(quiesceMs uint) { s.c.Disconnect(quiesceMs) }
func (s lightSession) IsConnectionOpen() bool    { return s.c.IsConnectionOpen() }

// newLightSession configures mqttlite as clientOptions configures paho.
func (p *Publisher) newLightSession(tc *tls.Config) session {
	o := mqttlite.Options{
		URL: p.cfg.URL, ClientID: p.cfg.ClientID, Username: p.cfg.Username, Password: p.cfg.Password,
		KeepAlive: p.cfg.KeepAlive, PingTimeout: 10 * time.Second,
		ConnectTimeout: p.o.connectTimeout, WriteTimeout: p.o.publishTimeout, TLS: tc,
		WillTopic: p.statusTopic, WillPayload: p.statusMessage(false), WillQoS: 1, WillRetained: true,
		OnConnectionLost: func(err error) { p.connectionLost(err) },
	}
	if p.o.dial != nil {
		o.Dial = p.o.dial
	}
	return lightSession{mqttlite.New(o)}
}

func (p *Publisher) tlsConfig() (*tls.Config, error) {
	u, _ := url.Parse(p.cfg.URL)
	secure := u.Scheme == "ssl" || u.Scheme == "tls" || u.Scheme == "mqtts" || u.Scheme == "wss"
	if !secure && p.cfg.CAFile == "" && p.cfg.CertFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if p.cfg.CAFile != "" {
		pem, err := os.ReadFile(p.cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt.ca_file: %s holds no PEM certificate", p.cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if p.cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(p.cfg.CertFile, p.cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (p *Publisher) clientOptions(tc *tls.Config) *mqtt.ClientOptions {
	o := mqtt.NewClientOptions().
		AddBroker(p.cfg.URL).
		SetClientID(p.cfg.ClientID).
		SetCleanSession(false).
		SetOrderMatters(false).
		SetKeepAlive(p.cfg.KeepAlive).
		SetPingTimeout(10*time.Second).
		SetConnectTimeout(p.o.connectTimeout).
		SetWriteTimeout(p.o.publishTimeout).
		// The publisher runs its own reconnect loop with jitter.
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(true).
		SetBinaryWill(p.statusTopic, p.statusMessage(false), 1, true).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { p.connectionLost(err) })
	if p.cfg.Username != "" {
		o.SetUsername(p.cfg.Username).SetPassword(p.cfg.Password)
	}
	if tc != nil {
		o.SetTLSConfig(tc)
	}
	if p.o.dial != nil {
		open := p.openConn(tc)
		o.SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) { return open(u) })
	}
	return o
}

// connectionLost is told by the client that the open connection ended.
func (p *Publisher) connectionLost(err error) {
	p.connected.Store(false)
	p.log.Warn("connection lost", "err", err)
	select {
	case p.lost <- struct{}{}:
	default:
	}
}

// wait waits for tok at most d (and not past ctx). It reports whether the
// token completed and its error.
func wait(ctx context.Context, tok mqtt.Token, d time.Duration) (bool, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-tok.Done():
		return true, tok.Error()
	case <-t.C:
		return false, errors.New("timed out")
	case <-ctx.Done():
		return false, ctx.Err()
	}
}
