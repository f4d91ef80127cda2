// Package clocktest simulates the kernel clocks and an RTC so that tests of
// the clock, the agent and the simulator can drive boots, NTP syncs and
// clock steps deterministically: nothing in it reads the real clock.
package clocktest
