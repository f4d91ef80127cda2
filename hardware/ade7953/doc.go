// Package ade7953 drives the Analog Devices ADE7953 single-phase energy
// metering IC over SPI, and adapts it to the agent's sensor.Sensor.
//
// Facts from the datasheet ("ADE7953 Single Phase, Multifunction Metering
// IC with Neutral Current Measurement", Analog Devices, Rev. C):
//
//   - SPI mode 3, up to 2 MHz. A transaction is the 16-bit register
//     address (MSB first), a read/write byte (0x80 read, 0x00 write), then
//     the data MSB first.
//   - The address range gives the width: 0x000-0x0FF 8-bit, 0x100-0x1FF
//     16-bit, 0x200-0x2FF 24-bit, 0x300-0x3FF the same 24-bit registers
//     sign-extended to 32 bits (which this driver reads).
//   - After power-up, register 0x120 must be set to 0x30 for the specified
//     performance, after writing the key 0xAD to 0x0FE to unlock it.
//   - With LCYCMODE.RSTREAD (bit 6, set by default) the energy registers
//     AENERGYx (0x31E/F), RENERGYx (0x320/1) and APENERGYx (0x322/3) are
//     cleared when read, so each read is the energy since the previous one.
//   - PERIOD (0x10E) counts a 223.75 kHz clock per line cycle:
//     f = 223750 / (PERIOD + 1) Hz. PFx (0x10A/B) is signed with an LSB of
//     2^-15.
//
// Raw register values have no unit until the board is calibrated: the
// volts, amperes and watt-hours per LSB depend on the divider and shunt or
// CT on the board, so they are options (see hardware/README.md for the
// calibration procedure).
package ade7953
