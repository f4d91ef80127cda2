// Package config loads and validates the agent's YAML configuration.
//
// Validation errors name the offending field by its YAML path and say what
// is wrong with the value found, e.g.
//
//	channels[2].interval: must be > 0, got "0s"
//
// so an operator can fix a file on a gateway without reading source code.
// Defaults are applied before validation; Channels converts the channel list
// into the sensor.Config values the sensor registry builds drivers from.
package config
