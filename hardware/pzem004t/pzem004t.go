package pzem004t

import (
	"context"
	"fmt"

	"periph.io/x/conn/v3/physic"

	"github.com/gridedge/gridedge/hardware/modbus"
)

// Registers and functions (user manual section 2).
const (
	regVoltage      uint16 = 0x0000
	inputRegisters  uint16 = 10 // 0x0000..0x0009
	holdingAddress  uint16 = 0x0002
	funcResetEnergy byte   = 0x42
)

// Addresses.
const (
	// GeneralAddress is answered by any PZEM-004T; use it with a single
	// meter on the line, or to give a new meter its own address.
	GeneralAddress byte = 0xF8
	minAddress     byte = 0x01
	maxAddress     byte = 0xF7
)

// Baud is the meter's fixed line speed.
const Baud = 9600

// Measurement is one reading.
type Measurement struct {
	Voltage physic.ElectricPotential
	Current physic.ElectricCurrent
	Power   physic.Power
	// EnergyWh is the meter's cumulative active energy in Wh. It is not a
	// physic.Energy: that type (int64 nJ) overflows at about 2562 kWh, and
	// this counter runs to 9999 kWh.
	EnergyWh    uint32
	Frequency   physic.Frequency
	PowerFactor float64 // 0.00..1.00
	// Alarm: active power is above the meter's power alarm threshold.
	Alarm bool
}

// Opts configures the driver.
type Opts struct {
	// Address is the meter's slave address; 0 means GeneralAddress.
	Address byte
}

// Dev is one PZEM-004T on a Modbus line.
type Dev struct {
	c    *modbus.Client
	addr byte
}

// New returns the meter at opts.Address on c. It does no I/O. A client
// used with the general address needs modbus.WithWildcardAddress(GeneralAddress):
// the meter answers it with its own address.
func New(c *modbus.Client, opts *Opts) (*Dev, error) {
	addr := GeneralAddress
	if opts != nil && opts.Address != 0 {
		addr = opts.Address
	}
	if addr != GeneralAddress && (addr < minAddress || addr > maxAddress) {
		return nil, fmt.Errorf("pzem004t: address 0x%02x outside 0x01..0xf7 (or 0xf8)", addr)
	}
	return &Dev{c: c, addr: addr}, nil
}

// String is "pzem004t@0xaddr".
func (d *Dev) String() string { return fmt.Sprintf("pzem004t@0x%02x", d.addr) }

// Sense reads all measurement registers in one request.
func (d *Dev) Sense(ctx context.Context, m *Measurement) error {
	r, err := d.c.ReadInputRegisters(ctx, d.addr, regVoltage, inputRegisters)
	if err != nil {
		return fmt.Errorf("%s: measurements: %w", d, err)
	}
	u32 := func(lo, hi uint16) uint32 { return uint32(hi)<<16 | uint32(lo) }
	*m = Measurement{
		Voltage:     physic.ElectricPotential(r[0]) * 100 * physic.MilliVolt,
		Current:     physic.ElectricCurrent(u32(r[1], r[2])) * physic.MilliAmpere,
		Power:       physic.Power(u32(r[3], r[4])) * 100 * physic.MilliWatt,
		EnergyWh:    u32(r[5], r[6]),
		Frequency:   physic.Frequency(r[7]) * 100 * physic.MilliHertz,
		PowerFactor: float64(r[8]) / 100,
		Alarm:       r[9] == 0xFFFF,
	}
	if m.PowerFactor > 1 {
		return fmt.Errorf("%s: power factor register %d above 100: %w", d, r[8], modbus.ErrUnexpectedResponse)
	}
	return nil
}

// SetAddress gives the meter a new slave address (0x01..0xF7); later calls
// use it.
func (d *Dev) SetAddress(ctx context.Context, addr byte) error {
	if addr < minAddress || addr > maxAddress {
		return fmt.Errorf("pzem004t: new address 0x%02x outside 0x01..0xf7", addr)
	}
	if err := d.c.WriteSingleRegister(ctx, d.addr, holdingAddress, uint16(addr)); err != nil {
		return fmt.Errorf("%s: set address: %w", d, err)
	}
	d.addr = addr
	return nil
}

// ResetEnergy zeroes the meter's energy counter (vendor function 0x42,
// answered by an echo of the request).
func (d *Dev) ResetEnergy(ctx context.Context) error {
	if _, err := d.c.Call(ctx, d.addr, funcResetEnergy, nil, 0); err != nil {
		return fmt.Errorf("%s: reset energy: %w", d, err)
	}
	return nil
}
