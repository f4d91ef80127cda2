// Package devices is the embedded broker's registry of who may speak MQTT:
// one line per identity in a file the operator manages with
// `gridedge-collector devices add|revoke|list`.
//
//	# gridedge MQTT identities: <username> <bcrypt hash of the secret>
//	site-1/gw-0001 $2a$10$...
//	dashboard $2a$10$...
//
// A username with a slash is a device, "<site>/<device_id>": it may publish
// only its own data and status topics and read only its own ack topic, and
// its MQTT client id must equal its username. A username without a slash is
// a collector identity: it may read every device's data and status and
// publish acks.
//
// Secrets are generated (32 random bytes, base64url, shown once) and stored
// only as bcrypt hashes (cost 10 by default, about 70 ms per verification;
// `devices add -cost 4` for simulated fleets). Because a generated secret has 256 bits of
// entropy, the hash's cost protects a leaked file, not the secret's guessing;
// a verified secret is remembered in memory as a keyed SHA-256 digest, so a
// fleet reconnecting after a network outage costs one bcrypt per device per
// broker start, not one per connect. Bcrypt verifications run at most
// GOMAXPROCS at a time.
//
// The registry reloads the file when it changes (checked at most once a
// second, and only while clients connect or publish), so a revocation takes
// effect without a restart; nothing runs while the broker is idle.
package devices
