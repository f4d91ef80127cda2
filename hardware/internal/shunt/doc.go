// Package shunt holds what the TI shunt power monitors (INA219, INA226)
// share above their register maps: the configuration and calibration
// registers with their self-repair after a chip reset (Registers), the
// measurement they produce and its adapter to the agent's sensor.Sensor.
package shunt
