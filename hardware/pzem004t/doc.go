// Package pzem004t drives the Peacefair PZEM-004T v3.0 single-phase AC
// meter over Modbus-RTU (TTL UART, 9600 baud 8N1), and adapts it to the
// agent's sensor.Sensor.
//
// Register map from the "PZEM-004T V3.0 User Manual" (Ningbo Peacefair /
// Innovators Guru, v3.0 module with Modbus-RTU): ten input registers from
// 0x0000 (voltage 0.1 V; current 0.001 A, power 0.1 W and energy 1 Wh as
// 32-bit values sent low word first; frequency 0.1 Hz; power factor 0.01;
// alarm status 0xFFFF/0x0000), the slave address in holding register
// 0x0002 (0x01..0xF7), and the vendor function 0x42 that resets the energy
// counter. Address 0xF8 is the general address every PZEM answers to,
// usable only with one meter on the line.
package pzem004t
