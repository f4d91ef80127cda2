// Package broker runs the embedded MQTT broker (mochi-mqtt) for one-command
// starts and demos, with the same security model as the shipped Mosquitto
// configuration:
//
//   - Every client authenticates against a device registry (cloud/devices);
//     anonymous access exists only when explicitly allowed (WithAnonymous),
//     and is then logged as a warning at start.
//   - A device's username is "<site>/<device_id>" and its client id must
//     equal it (CONNACK "identifier rejected" otherwise), so no device can
//     take another client's session, the collector's included. It may
//     publish only gridedge/v1/<site>/<device_id>/data and .../status
//     (its last will included: checked at connect) and read only its own
//     .../ack.
//   - A collector identity (a username without a slash, or the collector
//     process's own connection, whose secret is generated at every start)
//     may read every device's data and status, plain or through a shared
//     subscription, and publish acks; its client id may be anything
//     without a slash.
//   - A revoked identity is refused at its next connect, and a connected one
//     is disconnected at its next publish or subscribe.
//   - Packets are limited in size (DefaultMaxPacketBytes), sessions left by
//     vanished clients expire (DefaultSessionExpiry), and an optional TLS
//     listener serves gateways across networks.
//
// Connected sessions are bounded by the registry: one client id per device.
// State is in memory only. Correctness never depends on the broker keeping
// messages, because agents keep readings until the collector's end-to-end
// ack.
package broker
