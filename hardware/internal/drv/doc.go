// Package drv holds what every sensor.Sensor adapter in hardware/ does the
// same way: checking the configured quantities against what a chip offers,
// and collecting the values a channel asked for.
package drv
