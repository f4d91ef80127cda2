// Package ds3231 drives the Maxim (Analog Devices) DS3231 temperature-
// compensated real-time clock on I²C (address 0x68).
//
// A Pi-class gateway has no clock that survives a power cut; the DS3231 on
// a coin cell does. The agent's clock uses it as the "rtc" time quality
// until NTP syncs, and sets it after each sync. The chip is a clock, not a
// metering channel, so it is not in the sensor registry: the clock package
// opens it with Open and calls Time, SetTime and Temperature.
//
// The registers are BCD (datasheet "DS3231 Extremely Accurate I2C-
// Integrated RTC/TCXO/Crystal", 19-5170 Rev 10, figure 1 and table 2).
// The chip is kept in UTC, 24-hour mode; 12-hour values written by other
// software are still read correctly. Years 2000..2199 are represented
// with the century bit (month register bit 7) meaning 21xx.
//
// The oscillator-stop flag (OSF, status register bit 7) is set whenever
// the oscillator stopped (first power-up, flat coin cell): the time is then
// not to be trusted, and Time returns ErrTimeInvalid until SetTime clears it.
package ds3231
