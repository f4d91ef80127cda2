// Package broker runs an embedded MQTT broker (mochi-mqtt) for one-command
// starts and demos: every client is allowed, shared subscriptions
// ($share/<group>/<filter>) are available, state is in memory only. Production
// deployments use an external broker (Mosquitto); correctness never depends
// on the broker keeping messages, because agents keep them until the
// collector's end-to-end ack.
package broker
