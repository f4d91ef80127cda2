package ina226

import (
	"errors"
	"fmt"
	"math"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"

	"github.com/gridedge/gridedge/hardware/internal/regio"
	"github.com/gridedge/gridedge/hardware/internal/shunt"
)

// Register map (datasheet table 2).
const (
	regShunt        byte = 0x01
	regBus          byte = 0x02
	regPower        byte = 0x03
	regCurrent      byte = 0x04
	regMaskEnable   byte = 0x06
	RegManufacturer byte = 0xFE
	RegDieID        byte = 0xFF
)

// Identification values.
const (
	ManufacturerTI uint16 = 0x5449
	DieID          uint16 = 0x2260
)

// Configuration register fields (datasheet figure 19).
const (
	cfgReserved     uint16 = 0b100 << 12 // bits 14..12 read back as 100
	cfgAVGShift            = 9
	cfgVBUSCTShift         = 6
	cfgVSHCTShift          = 3
	cfgModeContinue uint16 = 0b111
)

// Mask/Enable flags (datasheet figure 25).
const (
	maskCVRF uint16 = 1 << 3 // conversion ready
	maskOVF  uint16 = 1 << 2 // math overflow
)

const (
	shuntLSB       = 2500 * physic.NanoVolt
	busLSB         = 1250 * physic.MicroVolt
	calScale       = 0.00512
	powerLSBFactor = 25
	maxShuntV      = 0.08192 // ±81.92 mV full scale
	// conversionTime is the 1.1 ms default of VBUSCT and VSHCT (code 100).
	conversionTime = 1100 * time.Microsecond
	ctDefault      = 0b100
)

// DefaultAddress is the address with A0 and A1 tied to GND.
const DefaultAddress uint16 = 0x40

// Errors of a reading.
var (
	ErrOverflow = errors.New("ina226: math overflow (OVF): current or power out of range")
	ErrNotReady = errors.New("ina226: conversion not ready (CVRF clear)")
	ErrReset    = errors.New("ina226: calibration lost (chip reset), re-programmed")
	// ErrNotINA226: the identification registers hold other values.
	ErrNotINA226 = errors.New("ina226: identification registers do not match")
)

// averages lists the sample counts of AVG field codes 0..7 (datasheet table 6).
func averages() []int { return []int{1, 4, 16, 64, 128, 256, 512, 1024} }

// Opts configures the chip.
type Opts struct {
	// Address on the bus, 0x40..0x4F; 0 means DefaultAddress.
	Address       uint16
	SenseResistor physic.ElectricResistance
	MaxCurrent    physic.ElectricCurrent
	// Samples averaged: 1, 4, 16, 64, 128, 256, 512 or 1024; 0 means 1.
	Samples int
}

// PowerMonitor is one reading.
type PowerMonitor = shunt.PowerMonitor

// Dev is one INA226.
type Dev struct {
	reg        regio.Dev
	regs       shunt.Registers
	currentLSB float64
	convTime   time.Duration
}

// New checks the chip's identity and programs configuration and calibration.
func New(bus i2c.Bus, opts *Opts) (*Dev, error) {
	addr := opts.Address
	if addr == 0 {
		addr = DefaultAddress
	}
	if addr < 0x40 || addr > 0x4F {
		return nil, fmt.Errorf("ina226: address 0x%02x outside 0x40..0x4f", addr)
	}
	d := &Dev{reg: regio.Dev{I2C: i2c.Dev{Bus: bus, Addr: addr}, Chip: "ina226"}}
	d.regs = shunt.Registers{Dev: &d.reg, ErrReset: ErrReset}
	if err := d.configure(opts); err != nil {
		return nil, err
	}
	mfr, err := d.reg.Read16(RegManufacturer, "manufacturer id")
	if err != nil {
		return nil, err
	}
	die, err := d.reg.Read16(RegDieID, "die id")
	if err != nil {
		return nil, err
	}
	if mfr != ManufacturerTI || die != DieID {
		return nil, fmt.Errorf("%s: %w: manufacturer 0x%04x die 0x%04x, want 0x%04x 0x%04x", d, ErrNotINA226, mfr, die, ManufacturerTI, DieID)
	}
	if err := d.regs.Program(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Dev) configure(opts *Opts) error {
	rShunt := float64(opts.SenseResistor) / float64(physic.Ohm)
	maxI := float64(opts.MaxCurrent) / float64(physic.Ampere)
	if rShunt <= 0 || maxI <= 0 {
		return fmt.Errorf("ina226: sense resistor (%v) and max current (%v) must be positive", opts.SenseResistor, opts.MaxCurrent)
	}
	if maxI*rShunt > maxShuntV*(1+1e-9) {
		return fmt.Errorf("ina226: %v × %v = %.2f mV exceeds the 81.92 mV shunt range", opts.MaxCurrent, opts.SenseResistor, maxI*rShunt*1000)
	}
	samples := max(opts.Samples, 1)
	avg := -1
	for code, n := range averages() {
		if n == samples {
			avg = code
		}
	}
	if avg < 0 {
		return fmt.Errorf("ina226: samples %d not one of %v", opts.Samples, averages())
	}
	d.regs.Config = cfgReserved | uint16(avg)<<cfgAVGShift | ctDefault<<cfgVBUSCTShift | ctDefault<<cfgVSHCTShift | cfgModeContinue
	d.convTime = 2 * time.Duration(samples) * conversionTime

	d.currentLSB = maxI / (1 << 15)
	// The relative nudge keeps a quotient that is an exact integer on paper
	// (0.00512 / (25 µA × 0.1 Ω) = 2048) from truncating to one less when
	// float64 lands just below it.
	cal := math.Trunc(calScale / (d.currentLSB * rShunt) * (1 + 1e-12))
	// Bit 15 of the calibration register is reserved.
	if cal < 1 || cal > 0x7FFF {
		return fmt.Errorf("ina226: calibration %v outside 1..32767: choose another max current for this shunt", cal)
	}
	d.regs.Calibration = uint16(cal)
	return nil
}

// Calibration returns the programmed calibration register value.
func (d *Dev) Calibration() uint16 { return d.regs.Calibration }

// String is "ina226@bus:0xaddr".
func (d *Dev) String() string { return d.reg.String() }

// Sense reads one complete conversion into m.
func (d *Dev) Sense(m *PowerMonitor) error {
	err := d.regs.Verify()
	if err != nil {
		return err
	}
	// Reading Mask/Enable clears CVRF, so each Sense waits for a
	// conversion that completed after the previous one.
	const polls = 3
	for i := range polls {
		mask, err := d.reg.Read16(regMaskEnable, "mask/enable")
		if err != nil {
			return err
		}
		if mask&maskOVF != 0 {
			return fmt.Errorf("%s: %w", d, ErrOverflow)
		}
		if mask&maskCVRF != 0 {
			break
		}
		if i == polls-1 {
			return fmt.Errorf("%s: %w after %d polls", d, ErrNotReady, polls)
		}
		time.Sleep(d.convTime)
	}
	var regs [4]uint16
	for i, r := range []struct {
		reg  byte
		name string
	}{{regBus, "bus voltage"}, {regShunt, "shunt voltage"}, {regCurrent, "current"}, {regPower, "power"}} {
		if regs[i], err = d.reg.Read16(r.reg, r.name); err != nil {
			return err
		}
	}
	m.Voltage = physic.ElectricPotential(regs[0]) * busLSB
	m.Shunt = physic.ElectricPotential(int16(regs[1])) * shuntLSB
	m.Current = physic.ElectricCurrent(math.Round(float64(int16(regs[2])) * d.currentLSB * float64(physic.Ampere)))
	m.Power = physic.Power(math.Round(float64(regs[3]) * powerLSBFactor * d.currentLSB * float64(physic.Watt)))
	return nil
}

// Halt implements conn.Resource; the chip keeps converting.
func (d *Dev) Halt() error { return nil }
