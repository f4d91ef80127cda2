// Package sensor is the agent's view of anything that produces measurements:
// a metering chip on a bus, a pulse counter on a GPIO, or a simulated load.
//
// A driver implements Sensor and registers a Factory under its name in a
// Registry; the registry is filled in one place (hardware/registry for real
// chips, plus the simulated drivers), and the agent's configuration picks a
// driver per channel. Buses come from an Env so tests can hand a driver a
// replayed bus (periph's i2ctest, spitest, conntest) instead of real hardware.
package sensor
