// Package mqttlite is a small MQTT 3.1.1 client for processes that hold
// thousands of sessions (the simulator's meters): while connected a
// session costs one goroutine (its reader), a 512-byte read buffer and a
// timer for the keepalive, against the half a dozen goroutines per
// connection of a general-purpose client.
//
// It does what gridedge's publisher needs and no more: CONNECT with
// username, password, a last will and a persistent session (clean session
// false); PUBLISH at QoS 0 or 1 (a QoS 1 token completes on the PUBACK);
// SUBSCRIBE at QoS 0 or 1 to exact topics (no wildcards), with incoming
// QoS 1 messages acknowledged after their handler returns; PINGREQ when
// nothing was sent for half the keepalive, and the connection is dropped
// when a PINGRESP is overdue; DISCONNECT. It does not reconnect by itself
// (the caller's loop does) and does not resend an unacknowledged publish
// after a reconnect: its token fails when the connection is lost, and the
// caller decides. QoS 2, wildcard subscriptions and WebSocket brokers are
// not supported; tcp:// and ssl:// (tls://, mqtts://) URLs are.
//
// Tokens are paho.mqtt.golang's Token interface, so a caller can wait on
// either client the same way.
package mqttlite
