package regio

import (
	"encoding/binary"
	"fmt"

	"periph.io/x/conn/v3/i2c"
)

// DefaultAttempts bounds how often one register access is tried. Three
// covers a transient NACK (a chip busy converting, EMI on a long bus)
// without hiding a chip that is gone.
const DefaultAttempts = 3

// Dev is one chip on an I²C bus.
type Dev struct {
	// I2C addresses the chip.
	I2C i2c.Dev
	// Chip names the chip in errors, e.g. "ina219".
	Chip string
	// Attempts per access; values below 1 mean DefaultAttempts.
	Attempts int
}

// String is "chip@bus:0xaddr".
func (d *Dev) String() string {
	return fmt.Sprintf("%s@%s:0x%02x", d.Chip, d.I2C.Bus, d.I2C.Addr)
}

func (d *Dev) tx(w, r []byte) error {
	n := d.Attempts
	if n < 1 {
		n = DefaultAttempts
	}
	var err error
	for range n {
		if err = d.I2C.Tx(w, r); err == nil {
			return nil
		}
	}
	if n > 1 {
		return fmt.Errorf("%d attempts: %w", n, err)
	}
	return err
}

// Read reads len(buf) bytes starting at register reg (one write of the
// register pointer, then a read with repeated start).
func (d *Dev) Read(reg byte, name string, buf []byte) error {
	if err := d.tx([]byte{reg}, buf); err != nil {
		return fmt.Errorf("%s: read %s (0x%02x): %w", d, name, reg, err)
	}
	return nil
}

// Write writes data starting at register reg.
func (d *Dev) Write(reg byte, name string, data ...byte) error {
	if err := d.tx(append([]byte{reg}, data...), nil); err != nil {
		return fmt.Errorf("%s: write %s (0x%02x): %w", d, name, reg, err)
	}
	return nil
}

// Read16 reads a big-endian 16-bit register.
func (d *Dev) Read16(reg byte, name string) (uint16, error) {
	var b [2]byte
	if err := d.Read(reg, name, b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(b[:]), nil
}

// Write16 writes a big-endian 16-bit register.
func (d *Dev) Write16(reg byte, name string, v uint16) error {
	return d.Write(reg, name, byte(v>>8), byte(v))
}
