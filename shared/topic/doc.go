// Package topic is gridedge's MQTT topic scheme, one place for both the agent
// and the collector:
//
//	gridedge/v1/<site>/<device>/data    agent → collector, QoS 1, one wire.Batch
//	gridedge/v1/<site>/<device>/ack     collector → agent, QoS 1, one wire.Ack
//	gridedge/v1/<site>/<device>/status  agent, retained, QoS 1, one wire.Status (birth and last will)
//
// Collectors subscribe through a shared subscription
// ($share/<group>/gridedge/v1/+/+/data) so several collector processes split
// the devices between them.
package topic
