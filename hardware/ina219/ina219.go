package ina219

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
	regShunt   byte = 0x01
	regBus     byte = 0x02
	regPower   byte = 0x03
	regCurrent byte = 0x04
)

// Configuration register fields (datasheet figure 19).
const (
	cfgBusRange32V  uint16 = 1 << 13 // BRNG
	cfgPGAShift            = 11      // PG1..PG0
	cfgBADCShift           = 7       // BADC4..BADC1
	cfgSADCShift           = 3       // SADC4..SADC1
	cfgModeContinue uint16 = 0b111   // shunt and bus, continuous
)

// Bus voltage register fields (datasheet figure 22).
const (
	busFlagOVF    uint16 = 1 << 0 // math overflow
	busFlagCNVR   uint16 = 1 << 1 // conversion ready
	busValueShift        = 3
)

// Fixed LSBs (datasheet 8.6.3) and calibration constants (8.5.1).
const (
	shuntLSB       = 10 * physic.MicroVolt
	busLSB         = 4 * physic.MilliVolt
	calScale       = 0.04096
	powerLSBFactor = 20
	// adcTime12 is one 12-bit conversion (datasheet table 5: 532 µs).
	adcTime12 = 532 * time.Microsecond
)

// DefaultAddress is the address with A0 and A1 tied to GND.
const DefaultAddress uint16 = 0x40

// Errors of a reading.
var (
	// ErrOverflow: the chip flagged a current or power overflow (OVF); the
	// shunt is larger than the calibration allows for.
	ErrOverflow = errors.New("ina219: math overflow (OVF): current or power out of range")
	// ErrNotReady: no conversion completed (CNVR stayed clear).
	ErrNotReady = errors.New("ina219: conversion not ready (CNVR clear)")
	// ErrReset: the calibration register was lost (chip reset) and has been
	// re-programmed; the next reading is valid.
	ErrReset = errors.New("ina219: calibration lost (chip reset), re-programmed")
)

// Opts configures the chip.
type Opts struct {
	// Address on the bus, 0x40..0x4F; 0 means DefaultAddress.
	Address uint16
	// SenseResistor is the shunt resistance (0.1 Ω on most breakouts).
	SenseResistor physic.ElectricResistance
	// MaxCurrent is the largest current expected; it sets the resolution.
	MaxCurrent physic.ElectricCurrent
	// BusRange is 16 V or 32 V full scale; 0 means 32 V.
	BusRange physic.ElectricPotential
	// Samples averaged per conversion: 1 (12-bit, no averaging), 2, 4, ... 128.
	// 0 means 1.
	Samples int
}

// PowerMonitor is one reading.
type PowerMonitor = shunt.PowerMonitor

// Dev is one INA219.
type Dev struct {
	reg        regio.Dev
	regs       shunt.Registers
	currentLSB float64 // A per count
	convTime   time.Duration
}

// New programs the configuration and calibration registers.
func New(bus i2c.Bus, opts *Opts) (*Dev, error) {
	addr := opts.Address
	if addr == 0 {
		addr = DefaultAddress
	}
	if addr < 0x40 || addr > 0x4F {
		return nil, fmt.Errorf("ina219: address 0x%02x outside 0x40..0x4f", addr)
	}
	d := &Dev{reg: regio.Dev{I2C: i2c.Dev{Bus: bus, Addr: addr}, Chip: "ina219"}}
	d.regs = shunt.Registers{Dev: &d.reg, ErrReset: ErrReset}
	if err := d.configure(opts); err != nil {
		return nil, err
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
		return fmt.Errorf("ina219: sense resistor (%v) and max current (%v) must be positive", opts.SenseResistor, opts.MaxCurrent)
	}
	// The PGA range must hold the largest shunt drop: ±40/80/160/320 mV.
	maxShunt := maxI * rShunt
	pga := -1
	for i, fs := range []float64{0.040, 0.080, 0.160, 0.320} {
		if maxShunt <= fs*(1+1e-9) { // 3.2 A × 0.1 Ω is 0.32000000000000006 in float64

			pga = i
			break
		}
	}
	if pga < 0 {
		return fmt.Errorf("ina219: %v × %v = %.0f mV exceeds the 320 mV shunt range", opts.MaxCurrent, opts.SenseResistor, maxShunt*1000)
	}
	var brng uint16
	switch opts.BusRange {
	case 0, 32 * physic.Volt:
		brng = cfgBusRange32V
	case 16 * physic.Volt:
	default:
		return fmt.Errorf("ina219: bus range %v is neither 16 V nor 32 V", opts.BusRange)
	}
	// ADC field (datasheet table 5): 0b0011 is 12-bit single; 0b1nnn
	// averages 2^nnn samples.
	var adc uint16
	samples := max(opts.Samples, 1)
	switch samples {
	case 1:
		adc = 0b0011
	case 2, 4, 8, 16, 32, 64, 128:
		adc = 0b1000 | uint16(math.Log2(float64(samples)))
	default:
		return fmt.Errorf("ina219: samples %d is not a power of two in 1..128", opts.Samples)
	}
	d.regs.Config = brng | uint16(pga)<<cfgPGAShift | adc<<cfgBADCShift | adc<<cfgSADCShift | cfgModeContinue
	d.convTime = 2 * time.Duration(samples) * adcTime12 // bus and shunt in turn

	d.currentLSB = maxI / (1 << 15)
	// The relative nudge keeps a quotient that is an exact integer on paper
	// (0.00512 / (25 µA × 0.1 Ω) = 2048) from truncating to one less when
	// float64 lands just below it.
	cal := math.Trunc(calScale / (d.currentLSB * rShunt) * (1 + 1e-12))
	// Bit 0 of the calibration register is void (reads 0), so the chip
	// uses cal rounded down to even; program exactly that so the read-back
	// check compares like with like.
	if cal < 2 || cal > 0xFFFE {
		return fmt.Errorf("ina219: calibration %v outside 2..65534: choose another max current for this shunt", cal)
	}
	d.regs.Calibration = uint16(cal) &^ 1
	return nil
}

// Calibration returns the programmed calibration register value.
func (d *Dev) Calibration() uint16 { return d.regs.Calibration }

// String is "ina219@bus:0xaddr".
func (d *Dev) String() string { return d.reg.String() }

// Sense reads one complete conversion into m.
func (d *Dev) Sense(m *PowerMonitor) error {
	err := d.regs.Verify()
	if err != nil {
		return err
	}
	var bus uint16
	const polls = 3
	for i := range polls {
		if bus, err = d.reg.Read16(regBus, "bus voltage"); err != nil {
			return err
		}
		if bus&busFlagOVF != 0 {
			return fmt.Errorf("%s: %w", d, ErrOverflow)
		}
		if bus&busFlagCNVR != 0 {
			break
		}
		if i == polls-1 {
			return fmt.Errorf("%s: %w after %d polls", d, ErrNotReady, polls)
		}
		time.Sleep(d.convTime)
	}
	shunt, err := d.reg.Read16(regShunt, "shunt voltage")
	if err != nil {
		return err
	}
	current, err := d.reg.Read16(regCurrent, "current")
	if err != nil {
		return err
	}
	// Reading the power register clears CNVR, so the next Sense waits for
	// a fresh conversion.
	power, err := d.reg.Read16(regPower, "power")
	if err != nil {
		return err
	}
	m.Shunt = physic.ElectricPotential(int16(shunt)) * shuntLSB
	m.Voltage = physic.ElectricPotential(bus>>busValueShift) * busLSB
	m.Current = physic.ElectricCurrent(math.Round(float64(int16(current)) * d.currentLSB * float64(physic.Ampere)))
	m.Power = physic.Power(math.Round(float64(power) * powerLSBFactor * d.currentLSB * float64(physic.Watt)))
	return nil
}

// Halt puts nothing on hold: the INA219 converts continuously and draws
// ~1 mA; it implements conn.Resource for symmetry with periph drivers.
func (d *Dev) Halt() error { return nil }
