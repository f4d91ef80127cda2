package publish

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// DialFunc opens the network connection to the broker at addr (host:port).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// WithDialer makes the publisher open its broker connections with dial
// instead of the MQTT client's own dialer: to choose the local address (a
// simulator spreading thousands of sessions over several loopback source
// addresses) or to interpose on the connection. TLS, when configured, runs
// over the connection dial returns. Only tcp/ssl URLs (and their aliases)
// are supported with a dialer.
func WithDialer(dial DialFunc) Option { return func(s *settings) { s.dial = dial } }

// openConn is the MQTT client's connection opener when a dialer is set.
func (p *Publisher) openConn(tc *tls.Config) func(u *url.URL) (net.Conn, error) {
	return func(u *url.URL) (net.Conn, error) {
		switch strings.ToLower(u.Scheme) {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "tcps":
		default:
			return nil, fmt.Errorf("publish: a custom dialer supports tcp and ssl brokers, not %q", u.Scheme)
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.o.connectTimeout)
		defer cancel()
		conn, err := p.o.dial(ctx, "tcp", u.Host)
		if err != nil || tc == nil {
			return conn, err
		}
		cfg := tc.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		tconn := tls.Client(conn, cfg)
		if err := tconn.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		return tconn, nil
	}
}
