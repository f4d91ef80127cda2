package mqttlite

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/gridedge/gridedge/shared/periodic"
)

// ErrNotConnected fails an operation on a client without an open
// connection; ErrConnectionLost fails a token pending when the connection
// closed.
var (
	ErrNotConnected   = errors.New("mqttlite: not connected")
	ErrConnectionLost = errors.New("mqttlite: connection lost")
)

// Options configure a Client.
type Options struct {
	// URL is the broker: tcp://host:port or ssl://host:port (tls://,
	// mqtts://, mqtt://, tcps:// are aliases).
	URL      string
	ClientID string
	Username string
	Password string
	// CleanSession asks the broker for a fresh session; false keeps the
	// session (its subscriptions and queued QoS 1 messages) across
	// connections.
	CleanSession bool
	// KeepAlive is the MQTT keepalive (0: none).
	KeepAlive time.Duration
	// PingTimeout is how long a PINGRESP may take before the connection
	// is dropped (default 10 s).
	PingTimeout time.Duration
	// ConnectTimeout bounds dialling, the TLS handshake and the CONNACK
	// (default 30 s); WriteTimeout bounds each write (default 10 s).
	ConnectTimeout time.Duration
	WriteTimeout   time.Duration
	// TLS is used for ssl URLs (and for tcp ones when set).
	TLS *tls.Config
	// Dial opens the connection (default: a net.Dialer); TLS runs over
	// what it returns.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Will, when WillTopic is set, is the last will the broker publishes
	// if the connection ends without a DISCONNECT.
	WillTopic    string
	WillPayload  []byte
	WillQoS      byte
	WillRetained bool
	// MaxPacket bounds the size of a packet the broker may send (default
	// 256 KiB); a bigger one ends the connection before it is read.
	MaxPacket int
	// OnConnectionLost is called (on the reader's goroutine) when an open
	// connection ends other than by Disconnect. It must not block.
	OnConnectionLost func(error)
}

// Handler receives a message on a subscribed topic. It runs on a
// goroutine of its own; a QoS 1 message is acknowledged when it returns.
type Handler func(topic string, payload []byte)

// Client is one MQTT session. Its methods are safe for concurrent use.
type Client struct {
	o Options

	// wmu serialises writes; mu guards the rest.
	wmu      sync.Mutex
	mu       sync.Mutex
	conn     net.Conn
	pending  map[uint16]*Token // QoS 1 publishes and subscribes awaiting their ack
	nextID   uint16
	handlers map[string]Handler
	keep     *periodic.Task

	open     atomic.Bool
	lastSent atomic.Int64 // unix ns
	pingSent atomic.Int64 // unix ns of the unanswered PINGREQ, 0 when none
}

// New returns a client; it does not connect.
func New(o Options) *Client {
	if o.PingTimeout <= 0 {
		o.PingTimeout = 10 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.MaxPacket <= 0 {
		o.MaxPacket = 256 << 10
	}
	return &Client{o: o, pending: map[uint16]*Token{}, handlers: map[string]Handler{}}
}

// IsConnectionOpen reports whether the client has an open connection.
func (c *Client) IsConnectionOpen() bool { return c.open.Load() }

// Connect opens the connection and completes the token on the CONNACK.
// A client already connected is disconnected first.
func (c *Client) Connect() *Token {
	t := newToken()
	go func() { t.complete(c.connect()) }()
	return t
}

func (c *Client) connect() error {
	c.Disconnect(0)
	u, err := url.Parse(c.o.URL)
	if err != nil {
		return fmt.Errorf("mqttlite: broker url: %w", err)
	}
	tc := c.o.TLS
	switch strings.ToLower(u.Scheme) {
	case "tcp", "mqtt":
	case "ssl", "tls", "mqtts", "tcps":
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	default:
		return fmt.Errorf("mqttlite: unsupported broker scheme %q (tcp or ssl)", u.Scheme)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.o.ConnectTimeout)
	defer cancel()
	dial := c.o.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", u.Host)
	if err != nil {
		return fmt.Errorf("mqttlite: dial: %w", err)
	}
	if tc != nil {
		if _, isTLS := conn.(*tls.Conn); !isTLS {
			cfg := tc.Clone()
			if cfg.ServerName == "" {
				cfg.ServerName = u.Hostname()
			}
			tconn := tls.Client(conn, cfg)
			if err := tconn.HandshakeContext(ctx); err != nil {
				conn.Close()
				return fmt.Errorf("mqttlite: tls: %w", err)
			}
			conn = tconn
		}
	}
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion = "MQTT", 4
	cp.ClientIdentifier = c.o.ClientID
	cp.CleanSession = c.o.CleanSession
	cp.Keepalive = uint16(c.o.KeepAlive / time.Second)
	if c.o.Username != "" {
		cp.UsernameFlag, cp.Username = true, c.o.Username
		if c.o.Password != "" {
			cp.PasswordFlag, cp.Password = true, []byte(c.o.Password)
		}
	}
	if c.o.WillTopic != "" {
		cp.WillFlag, cp.WillTopic, cp.WillMessage, cp.WillQos, cp.WillRetain = true, c.o.WillTopic, c.o.WillPayload, c.o.WillQoS, c.o.WillRetained
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if err := cp.Write(conn); err != nil {
		conn.Close()
		return fmt.Errorf("mqttlite: send connect: %w", err)
	}
	r := bufio.NewReaderSize(conn, 512)
	p, err := c.readPacket(r)
	if err != nil {
		conn.Close()
		return fmt.Errorf("mqttlite: read connack: %w", err)
	}
	ca, ok := p.(*packets.ConnackPacket)
	if !ok {
		conn.Close()
		return fmt.Errorf("mqttlite: broker answered connect with %T", p)
	}
	if ca.ReturnCode != packets.Accepted {
		conn.Close()
		return fmt.Errorf("mqttlite: connect refused: %w", packets.ConnErrors[ca.ReturnCode])
	}
	_ = conn.SetDeadline(time.Time{})
	c.mu.Lock()
	c.conn = conn
	c.open.Store(true)
	c.lastSent.Store(time.Now().UnixNano())
	c.pingSent.Store(0)
	if c.o.KeepAlive > 0 {
		c.keep = periodic.Start(c.o.KeepAlive/2, func() { c.keepalive(conn) })
	}
	c.mu.Unlock()
	go c.read(conn, r)
	return nil
}

// keepalive pings when nothing was sent for half the keepalive and drops
// the connection when a ping went unanswered for PingTimeout.
func (c *Client) keepalive(conn net.Conn) {
	now := time.Now().UnixNano()
	if sent := c.pingSent.Load(); sent != 0 {
		if now-sent > int64(c.o.PingTimeout) {
			conn.Close() // the reader reports the loss
		}
		return
	}
	if now-c.lastSent.Load() < int64(c.o.KeepAlive/2) {
		return
	}
	c.pingSent.Store(now)
	if err := c.write(conn, packets.NewControlPacket(packets.Pingreq)); err != nil {
		conn.Close()
	}
}

// read handles incoming packets until the connection fails.
func (c *Client) read(conn net.Conn, r *bufio.Reader) {
	for {
		p, err := c.readPacket(r)
		if err != nil {
			c.lost(conn, err)
			return
		}
		switch p := p.(type) {
		case *packets.PubackPacket:
			c.finish(p.MessageID, nil)
		case *packets.SubackPacket:
			var err error
			for _, rc := range p.ReturnCodes {
				if rc == 0x80 {
					err = errors.New("mqttlite: subscription refused by the broker")
				}
			}
			c.finish(p.MessageID, err)
		case *packets.PingrespPacket:
			c.pingSent.Store(0)
		case *packets.PublishPacket:
			c.mu.Lock()
			h := c.handlers[p.TopicName]
			c.mu.Unlock()
			go c.deliver(conn, h, p)
		}
	}
}

func (c *Client) deliver(conn net.Conn, h Handler, p *packets.PublishPacket) {
	if h != nil {
		h(p.TopicName, p.Payload)
	}
	if p.Qos == 1 {
		ack := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
		ack.MessageID = p.MessageID
		if err := c.write(conn, ack); err != nil {
			conn.Close()
		}
	}
}

// lost closes conn's session state if conn is still the current
// connection: pending tokens fail and OnConnectionLost is told.
func (c *Client) lost(conn net.Conn, err error) {
	if c.drop(conn, ErrConnectionLost) && c.o.OnConnectionLost != nil {
		c.o.OnConnectionLost(fmt.Errorf("%w: %v", ErrConnectionLost, err))
	}
}

// drop closes conn and fails the pending tokens with why, if conn is the
// current connection. It reports whether it was.
func (c *Client) drop(conn net.Conn, why error) bool {
	c.mu.Lock()
	if c.conn != conn || conn == nil {
		c.mu.Unlock()
		return false
	}
	c.conn = nil
	c.open.Store(false)
	keep := c.keep
	c.keep = nil
	pending := c.pending
	c.pending = map[uint16]*Token{}
	c.mu.Unlock()
	conn.Close()
	if keep != nil {
		keep.Stop() // the keepalive never calls drop: no deadlock
	}
	for _, t := range pending {
		t.complete(why)
	}
	return true
}

// Disconnect sends DISCONNECT and closes the connection; pending tokens
// fail. quiesce (ms) is how long to wait for pending acks first.
func (c *Client) Disconnect(quiesce uint) {
	c.mu.Lock()
	conn := c.conn
	var waits []*Token
	for _, t := range c.pending {
		waits = append(waits, t)
	}
	c.mu.Unlock()
	if conn == nil {
		return
	}
	deadline := time.After(time.Duration(quiesce) * time.Millisecond)
wait:
	for _, t := range waits {
		select {
		case <-t.done:
		case <-deadline:
			break wait
		}
	}
	_ = c.write(conn, packets.NewControlPacket(packets.Disconnect))
	c.drop(conn, ErrNotConnected)
}

// write sends one packet on conn, in one write.
func (c *Client) write(conn net.Conn, p packets.ControlPacket) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = conn.SetWriteDeadline(time.Now().Add(c.o.WriteTimeout))
	if err := p.Write(conn); err != nil {
		return fmt.Errorf("mqttlite: write: %w", err)
	}
	c.lastSent.Store(time.Now().UnixNano())
	return nil
}

// register reserves a packet id for t on the current connection.
func (c *Client) register(t *Token) (net.Conn, uint16, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return nil, 0, ErrNotConnected
	}
	if len(c.pending) >= 1<<16-1 {
		return nil, 0, errors.New("mqttlite: every packet id is in use")
	}
	for {
		c.nextID++
		if _, used := c.pending[c.nextID]; c.nextID != 0 && !used {
			break
		}
	}
	c.pending[c.nextID] = t
	return c.conn, c.nextID, nil
}

func (c *Client) finish(id uint16, err error) {
	c.mu.Lock()
	t := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if t != nil {
		t.complete(err)
	}
}

// Publish sends payload to topic. At QoS 0 the token completes once it is
// written; at QoS 1 on the broker's PUBACK.
func (c *Client) Publish(topic string, qos byte, retained bool, payload []byte) *Token {
	t := newToken()
	if qos > 1 {
		t.complete(errors.New("mqttlite: QoS 2 is not supported"))
		return t
	}
	pp := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pp.TopicName, pp.Qos, pp.Retain, pp.Payload = topic, qos, retained, payload
	if qos == 0 {
		c.mu.Lock()
		conn := c.conn
		c.mu.Unlock()
		if conn == nil {
			t.complete(ErrNotConnected)
			return t
		}
		t.complete(c.write(conn, pp))
		return t
	}
	conn, id, err := c.register(t)
	if err != nil {
		t.complete(err)
		return t
	}
	pp.MessageID = id
	if err := c.write(conn, pp); err != nil {
		c.finish(id, err)
		conn.Close()
	}
	return t
}

// Subscribe subscribes to one exact topic (no wildcards) and routes its
// messages to h, also those the broker delivers from the persistent
// session before the subscription is renewed. The token completes on the
// SUBACK.
func (c *Client) Subscribe(topic string, qos byte, h Handler) *Token {
	t := newToken()
	if strings.ContainsAny(topic, "+#") {
		t.complete(errors.New("mqttlite: wildcard subscriptions are not supported"))
		return t
	}
	c.mu.Lock()
	c.handlers[topic] = h
	c.mu.Unlock()
	conn, id, err := c.register(t)
	if err != nil {
		t.complete(err)
		return t
	}
	sp := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sp.MessageID, sp.Topics, sp.Qoss = id, []string{topic}, []byte{min(qos, 1)}
	if err := c.write(conn, sp); err != nil {
		c.finish(id, err)
		conn.Close()
	}
	return t
}

// readPacket reads one packet, refusing one longer than MaxPacket before
// allocating for it.
func (c *Client) readPacket(r *bufio.Reader) (packets.ControlPacket, error) {
	first, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	n, mult := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return nil, errors.New("mqttlite: malformed remaining length")
		}
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		n += int(b&0x7f) * mult
		if b&0x80 == 0 {
			break
		}
		mult *= 128
	}
	if n > c.o.MaxPacket {
		return nil, fmt.Errorf("mqttlite: broker sent a %d-byte packet, limit %d", n, c.o.MaxPacket)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	p, err := packets.NewControlPacketWithHeader(packets.FixedHeader{
		MessageType: first >> 4, Dup: first&0x08 != 0, Qos: (first >> 1) & 0x03, Retain: first&0x01 != 0, RemainingLength: n,
	})
	if err != nil {
		return nil, fmt.Errorf("mqttlite: %w", err)
	}
	if err := p.Unpack(bytes.NewReader(body)); err != nil {
		return nil, fmt.Errorf("mqttlite: malformed %T: %w", p, err)
	}
	return p, nil
}
