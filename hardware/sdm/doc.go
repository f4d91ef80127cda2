// Package sdm drives Eastron SDM120 (single-phase) and SDM630 (three-phase)
// DIN-rail meters over Modbus-RTU, and adapts them to the agent's
// sensor.Sensor.
//
// Every measured value is an IEEE-754 float32 held in two consecutive input
// registers, high word first (function 0x04). Register addresses follow
// the Eastron "SDM630-Modbus V2" user manual (Eastron / B+G e-tech,
// section 1.2 "Modbus Protocol Input Registers") and the "SDM120-Modbus"
// protocol table (Eastron, V2 series), which share one layout:
//
//	0x0000/02/04 phase 1/2/3 L-N voltage     0x0006/08/0A phase 1/2/3 current
//	0x000C/0E/10 phase 1/2/3 active power    0x0012/14/16 apparent power
//	0x0018/1A/1C reactive power              0x001E/20/22 power factor
//	0x002A average L-N voltage (SDM630)      0x0030 sum of line currents
//	0x0034 total power   0x0038 total VA     0x003C total VAr   0x003E total PF
//	0x0046 frequency     0x0048 import kWh   0x004A export kWh  0x0156 total kWh
//
// The SDM120 has only phase 1. The SDM630's phase-2/3 registers read 0 in
// single-phase wiring, so a channel names its phase explicitly.
package sdm
