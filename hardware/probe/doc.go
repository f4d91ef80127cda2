// Package probe finds the metering hardware attached to a gateway, for the
// agent's `probe` subcommand: it scans I²C buses and serial lines and
// prints, per device found, where it is, what it most likely is and a
// sample reading, so an installer can write the channel configuration.
//
// I²C: every address 0x03..0x77 gets a one-byte read (what i2cdetect -r
// does), which changes nothing on the chips this product uses. Answering
// addresses are identified without writing: INA226 by its manufacturer and
// die ID registers (0xFE = 0x5449, 0xFF = 0x2260), INA219 by a
// configuration register with the INA219's reserved bit clear (it has no
// ID register), the DS3231 at 0x68 by time registers holding a valid BCD
// date.
//
// Serial: each line is tried at the PZEM-004T's 9600 baud and the SDM120's
// factory 2400 baud, asking Modbus addresses 1..N (and the PZEM general
// address 0xF8) for their first input registers; a plausible mains voltage
// in the PZEM's fixed-point or the Eastron float format names the meter.
package probe
