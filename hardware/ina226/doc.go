// Package ina226 drives the Texas Instruments INA226 current, voltage and
// power monitor (36 V bus, 16-bit) on I²C, and adapts it to the agent's
// sensor.Sensor.
//
// The calibration follows the datasheet (TI SBOS547A, "INA226 High-Side or
// Low-Side Measurement, Bi-Directional Current and Power Monitor with
// I2C Compatible Interface", revised August 2015, section 7.5):
//
//	Current_LSB = MaxExpectedCurrent / 2^15
//	CAL         = trunc(0.00512 / (Current_LSB × Rshunt))
//	Power_LSB   = 25 × Current_LSB
//
// Readings are taken only after the Mask/Enable register reports a
// completed conversion (CVRF) and are refused when it reports a math
// overflow (OVF). The calibration register is read back on every Sense so a
// chip reset is noticed and repaired rather than read as zero current.
// The chip identifies itself: manufacturer ID 0x5449 ("TI") at 0xFE and
// die ID 0x2260 at 0xFF, which New checks.
package ina226
