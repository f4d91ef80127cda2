// Package ina219 drives the Texas Instruments INA219 high-side DC current
// and power monitor on I²C, and adapts it to the agent's sensor.Sensor.
//
// The calibration register is computed from the shunt resistance and the
// largest current expected, following the datasheet (TI SBOS448G, "INA219
// Zerø-Drift, Bidirectional Current/Power Monitor With I2C Interface",
// revised December 2015, section 8.5.1):
//
//	Current_LSB = MaxExpectedCurrent / 2^15
//	Cal         = trunc(0.04096 / (Current_LSB × Rshunt))
//	Power_LSB   = 20 × Current_LSB
//
// A reading is taken only when the conversion-ready flag (CNVR) is set and
// is refused when the math-overflow flag (OVF) is set: an overflowed
// current or power register holds a wrapped, wrong number. The calibration
// register is read back on every Sense so a chip that browned out (and
// lost it, after which current and power read 0) is noticed and
// re-programmed instead of reporting zero.
package ina219
