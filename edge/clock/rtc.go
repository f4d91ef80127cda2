package clock

import "time"

// RTC is a battery-backed real-time clock such as a DS3231 on I2C. The agent
// passes its driver in; this package does not depend on any driver.
type RTC interface {
	// Time reads the clock. It returns an error when the bus fails or the
	// chip says its time is invalid (the DS3231's oscillator-stop flag is
	// set after the battery ran flat).
	Time() (time.Time, error)
	// SetTime writes t to the clock (and clears an invalid-time flag).
	SetTime(t time.Time) error
}
