package ade7953

import (
	"errors"
	"fmt"
	"math"

	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

// Registers (datasheet tables 11-14). 32-bit addresses are used for the
// 24-bit registers so values arrive sign-extended.
const (
	regLCYCMODE  uint16 = 0x004 // 8-bit
	regUnlock    uint16 = 0x0FE // 8-bit
	regVersion   uint16 = 0x702 // 8-bit
	regPFA       uint16 = 0x10A // 16-bit, PFB = 0x10B
	regPeriod    uint16 = 0x10E // 16-bit
	regReserved  uint16 = 0x120 // 16-bit, set to 0x30 after unlock
	regAVA       uint16 = 0x310 // 32-bit instantaneous apparent power, BVA = 0x311
	regAWATT     uint16 = 0x312 // instantaneous active power, BWATT = 0x313
	regAVAR      uint16 = 0x314 // instantaneous reactive power, BVAR = 0x315
	regIRMSA     uint16 = 0x31A // 32-bit, IRMSB = 0x31B
	regVRMS      uint16 = 0x31C
	regAENERGYA  uint16 = 0x31E // AENERGYB = 0x31F
	regRENERGYA  uint16 = 0x320 // RENERGYB = 0x321
	regAPENERGYA uint16 = 0x322 // APENERGYB = 0x323
)

const (
	cmdRead  byte = 0x80
	cmdWrite byte = 0x00

	unlockKey       byte   = 0xAD
	reservedValue   uint16 = 0x0030
	lcycRSTREAD     byte   = 1 << 6
	periodClockHz          = 223750.0
	pfLSB                  = 1.0 / (1 << 15)
	maxSPIFrequency        = 2 * physic.MegaHertz
)

// Channel is the current input: A (shunt) or B (CT or second shunt).
type Channel int

const (
	ChannelA Channel = 0
	ChannelB Channel = 1
)

// Calibration turns register counts into physical units. A zero field
// leaves its quantity unscaled (and, for the instantaneous power registers,
// unread).
type Calibration struct {
	VoltsPerLSB float64 // VRMS
	AmpsPerLSB  float64 // IRMSx
	WhPerLSB    float64 // AENERGYx
	VARhPerLSB  float64 // RENERGYx
	VAhPerLSB   float64 // APENERGYx
	// Instantaneous power registers (optional): xWATT, xVAR, xVA.
	WattsPerLSB float64
	VARPerLSB   float64
	VAPerLSB    float64
}

// Opts configures the driver.
type Opts struct {
	Channel     Channel
	Calibration Calibration
	// Frequency of the SPI clock; 0 means 1 MHz.
	Frequency physic.Frequency
}

// ErrNoChip: the register written at set-up does not read back, so no
// ADE7953 answers on this SPI port (MISO floating or another chip).
var ErrNoChip = errors.New("ade7953: set-up register does not read back (no chip on this port?)")

// Measurement is one reading. The energies are those accumulated since the
// previous Sense (read-with-reset), as raw counts scaled by the
// calibration; they are signed (negative when energy flows to the grid).
type Measurement struct {
	Voltage     physic.ElectricPotential
	Current     physic.ElectricCurrent
	PowerFactor float64
	Frequency   physic.Frequency
	// ActiveWh, ReactiveVARh, ApparentVAh: energy since the previous Sense.
	ActiveWh     float64
	ReactiveVARh float64
	ApparentVAh  float64
	// Instantaneous power, read only when its calibration is set.
	ActivePower physic.Power
	ReactiveVAR float64
	ApparentVA  float64
}

// Dev is one ADE7953.
type Dev struct {
	c    spi.Conn
	opts Opts
}

// New connects to port (mode 3), unlocks and sets register 0x120 as the
// datasheet requires, enables read-with-reset energy registers, and checks
// that the chip answers.
func New(port spi.Port, opts *Opts) (*Dev, error) {
	o := *opts
	if o.Frequency == 0 {
		o.Frequency = physic.MegaHertz
	}
	if o.Frequency > maxSPIFrequency {
		return nil, fmt.Errorf("ade7953: SPI clock %v above the 2 MHz maximum", o.Frequency)
	}
	if o.Channel != ChannelA && o.Channel != ChannelB {
		return nil, fmt.Errorf("ade7953: current channel %d is neither A nor B", o.Channel)
	}
	c, err := port.Connect(o.Frequency, spi.Mode3, 8)
	if err != nil {
		return nil, fmt.Errorf("ade7953: connect SPI: %w", err)
	}
	d := &Dev{c: c, opts: o}
	if err := d.write(regUnlock, 1, uint32(unlockKey)); err != nil {
		return nil, err
	}
	if err := d.write(regReserved, 2, uint32(reservedValue)); err != nil {
		return nil, err
	}
	if err := d.write(regLCYCMODE, 1, uint32(lcycRSTREAD)); err != nil {
		return nil, err
	}
	v, err := d.read(regReserved, 2)
	if err != nil {
		return nil, err
	}
	if v != uint32(reservedValue) {
		return nil, fmt.Errorf("%w: 0x120 reads 0x%04x", ErrNoChip, v)
	}
	return d, nil
}

// width returns the register's size in bytes from its address range.
func width(reg uint16) int {
	switch {
	case reg < 0x100:
		return 1
	case reg < 0x200:
		return 2
	case reg < 0x300:
		return 3
	case reg < 0x400:
		return 4
	}
	return 1 // 0x702 VERSION, 0x800 EX_REF are 8-bit
}

func (d *Dev) read(reg uint16, n int) (uint32, error) {
	if n != width(reg) {
		return 0, fmt.Errorf("ade7953: register 0x%03x is %d bytes, not %d", reg, width(reg), n)
	}
	w := make([]byte, 3+n)
	w[0], w[1], w[2] = byte(reg>>8), byte(reg), cmdRead
	r := make([]byte, len(w))
	if err := d.tx(w, r); err != nil {
		return 0, fmt.Errorf("ade7953: read 0x%03x: %w", reg, err)
	}
	var v uint32
	for _, b := range r[3:] {
		v = v<<8 | uint32(b)
	}
	return v, nil
}

func (d *Dev) write(reg uint16, n int, v uint32) error {
	if n != width(reg) {
		return fmt.Errorf("ade7953: register 0x%03x is %d bytes, not %d", reg, width(reg), n)
	}
	w := make([]byte, 3+n)
	w[0], w[1], w[2] = byte(reg>>8), byte(reg), cmdWrite
	for i := range n {
		w[3+i] = byte(v >> (8 * (n - 1 - i)))
	}
	if err := d.tx(w, nil); err != nil {
		return fmt.Errorf("ade7953: write 0x%03x: %w", reg, err)
	}
	return nil
}

// tx retries a failed transfer a bounded number of times. Energy registers
// are read-with-reset, so a retry after a transfer that failed part-way
// can lose that interval's energy; SPI transfers fail only when the driver
// (not the wire) fails, which makes that rare and visible in the error count.
func (d *Dev) tx(w, r []byte) error {
	const attempts = 3
	var err error
	for range attempts {
		if err = d.c.Tx(w, r); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%d attempts: %w", attempts, err)
}

// Width is the size in bytes of register reg, given by its address range.
func Width(reg uint16) int { return width(reg) }

// ReadRegister reads any register at its native width (for calibration
// tools: gains such as AVGAIN 0x381, offsets, IRQ status). Reading an energy
// register clears it when RSTREAD is set.
func (d *Dev) ReadRegister(reg uint16) (uint32, error) { return d.read(reg, width(reg)) }

// WriteRegister writes v to reg at its native width; bits above the width
// must be zero.
func (d *Dev) WriteRegister(reg uint16, v uint32) error {
	n := width(reg)
	if n < 4 && v>>(8*n) != 0 {
		return fmt.Errorf("ade7953: value 0x%x does not fit %d-byte register 0x%03x", v, n, reg)
	}
	return d.write(reg, n, v)
}

// String is "ade7953/A" or "ade7953/B".
func (d *Dev) String() string { return fmt.Sprintf("ade7953/%c", 'A'+rune(d.opts.Channel)) }

// Halt implements conn.Resource; the chip keeps metering.
func (d *Dev) Halt() error { return nil }

// Sense reads RMS values, power factor, line period and the three energy
// accumulators of the configured channel (clearing them).
func (d *Dev) Sense(m *Measurement) error {
	ch := uint16(d.opts.Channel)
	cal := d.opts.Calibration
	vrms, err := d.read(regVRMS, 4)
	if err != nil {
		return err
	}
	irms, err := d.read(regIRMSA+ch, 4)
	if err != nil {
		return err
	}
	pf, err := d.read(regPFA+ch, 2)
	if err != nil {
		return err
	}
	period, err := d.read(regPeriod, 2)
	if err != nil {
		return err
	}
	var energy [3]int32
	for i, reg := range []uint16{regAENERGYA + ch, regRENERGYA + ch, regAPENERGYA + ch} {
		v, err := d.read(reg, 4)
		if err != nil {
			return err
		}
		energy[i] = int32(v)
	}
	var inst [3]int32 // watt, var, VA
	for i, r := range []struct {
		reg    uint16
		perLSB float64
	}{{regAWATT + ch, cal.WattsPerLSB}, {regAVAR + ch, cal.VARPerLSB}, {regAVA + ch, cal.VAPerLSB}} {
		if r.perLSB == 0 {
			continue
		}
		v, err := d.read(r.reg, 4)
		if err != nil {
			return err
		}
		inst[i] = int32(v)
	}
	*m = Measurement{
		Voltage:      physic.ElectricPotential(math.Round(float64(vrms) * cal.VoltsPerLSB * float64(physic.Volt))),
		Current:      physic.ElectricCurrent(math.Round(float64(irms) * cal.AmpsPerLSB * float64(physic.Ampere))),
		PowerFactor:  float64(int16(pf)) * pfLSB,
		Frequency:    physic.Frequency(math.Round(periodClockHz / float64(period+1) * float64(physic.Hertz))),
		ActiveWh:     float64(energy[0]) * cal.WhPerLSB,
		ReactiveVARh: float64(energy[1]) * cal.VARhPerLSB,
		ApparentVAh:  float64(energy[2]) * cal.VAhPerLSB,
		ActivePower:  physic.Power(math.Round(float64(inst[0]) * cal.WattsPerLSB * float64(physic.Watt))),
		ReactiveVAR:  float64(inst[1]) * cal.VARPerLSB,
		ApparentVA:   float64(inst[2]) * cal.VAPerLSB,
	}
	return nil
}
