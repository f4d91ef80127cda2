// Package pulse counts the energy pulses of a meter's S0 output or of an
// optical reader on its LED (e.g. 1000 imp/kWh) on a GPIO, and adapts the
// count to the agent's sensor.Sensor.
//
// Every pulse is a fixed amount of energy (1000/imp_per_kWh Wh), so the
// cumulative energy is the pulse count, and the power is derived from the
// time between the last two pulses:
//
//	P = 3600 / (imp_per_kWh/1000 · Δt_s) W
//
// When pulses stop (load switched off) the last interval would report the
// old power forever. The next pulse has not come yet, so the power is at
// most what one pulse in the time since the last one means; reported power
// is the smaller of the two and decays toward 0 as 1/t.
//
// Edges closer than the minimum spacing after an accepted pulse are
// contact bounce or noise and are counted separately, not as energy. The
// S0 interface (DIN 43864 / IEC 62053-31) specifies pulses of at least
// 30 ms, so a 20 ms default spacing rejects bounce without losing pulses
// below 50 imp/s (180 kW at 1000 imp/kWh).
//
// The energy counter is kept in the channel's state directory (written
// atomically) so a reboot does not restart it from zero.
package pulse
