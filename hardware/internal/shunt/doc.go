// Package shunt holds what the TI shunt power monitors (INA219, INA226)
// share above their register maps: the measurement they produce and its
// adapter to the agent's sensor.Sensor.
package shunt
