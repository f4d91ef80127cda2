// Package registry is the one place the hardware drivers are registered.
// The agent calls Register once at start-up (together with the simulated
// drivers) and picks a driver per channel by name.
//
// The DS3231 real-time clock is not a channel: the agent's clock opens it
// with OpenRTC.
package registry
