package ina219

import (
	"errors"
	"fmt"

	"periph.io/x/conn/v3/physic"

	"github.com/gridedge/gridedge/hardware/internal/drv"
	"github.com/gridedge/gridedge/hardware/internal/shunt"
	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/wire"
)

// DriverName is the name channels use in the agent configuration.
const DriverName = "ina219"

// Options are a channel's driver options in the agent configuration.
type Options struct {
	// Bus is the I²C bus name as periph knows it ("1" for /dev/i2c-1);
	// empty means the first bus.
	Bus string `yaml:"bus"`
	// Address of the chip; 0 means 0x40.
	Address uint16 `yaml:"address"`
	// ShuntOhms is the shunt resistance in Ω (default 0.1).
	ShuntOhms float64 `yaml:"shunt_ohms"`
	// MaxCurrentA is the largest expected current in A (default 3.2, the
	// ±320 mV range across 0.1 Ω).
	MaxCurrentA float64 `yaml:"max_current_a"`
	// BusRangeV is 16 or 32 (default 32).
	BusRangeV int `yaml:"bus_range_v"`
	// Samples averaged per conversion, power of two 1..128 (default 1).
	Samples int `yaml:"samples"`
}

var offered = []wire.Quantity{
	wire.Quantity_QUANTITY_VOLTAGE,
	wire.Quantity_QUANTITY_CURRENT,
	wire.Quantity_QUANTITY_ACTIVE_POWER,
}

// Driver is the registry entry.
func Driver() sensor.Driver {
	return sensor.Driver{Name: DriverName, Summary: "TI INA219 DC shunt monitor on I2C: voltage, current, power", New: NewSensor, Check: Check}
}

// Check validates a channel's configuration without opening the bus, with
// the rules NewSensor applies.
func Check(cfg sensor.Config) error {
	_, _, err := parse(cfg)
	return err
}

// parse decodes and checks the options; every problem names its option.
func parse(cfg sensor.Config) (Options, *Opts, error) {
	o := Options{ShuntOhms: 0.1, MaxCurrentA: 3.2}
	if err := cfg.DecodeOptions(&o); err != nil {
		return o, nil, err
	}
	var p drv.Problems
	p.Add(drv.CheckQuantities(cfg, offered...))
	if o.Address != 0 && (o.Address < 0x40 || o.Address > 0x4F) {
		p.Option("address", "must be 0x40..0x4f (set by the A0/A1 pins), got %#x", o.Address)
	}
	if o.ShuntOhms <= 0 {
		p.Option("shunt_ohms", "must be > 0, got %v", o.ShuntOhms)
	}
	if o.MaxCurrentA <= 0 {
		p.Option("max_current_a", "must be > 0, got %v", o.MaxCurrentA)
	}
	if o.BusRangeV != 0 && o.BusRangeV != 16 && o.BusRangeV != 32 {
		p.Option("bus_range_v", "must be 16 or 32, got %d", o.BusRangeV)
	}
	if s := o.Samples; s != 0 && (s < 1 || s > 128 || s&(s-1) != 0) {
		p.Option("samples", "must be a power of two 1..128, got %d", s)
	}
	if err := p.Err(); err != nil {
		return o, nil, err
	}
	opts := &Opts{
		Address:       o.Address,
		SenseResistor: physic.ElectricResistance(o.ShuntOhms * float64(physic.Ohm)),
		MaxCurrent:    physic.ElectricCurrent(o.MaxCurrentA * float64(physic.Ampere)),
		BusRange:      physic.ElectricPotential(o.BusRangeV) * physic.Volt,
		Samples:       o.Samples,
	}
	// What only the combination decides (the shunt drop at max_current_a
	// against the chip's range, the calibration register's range).
	if err := (&Dev{}).configure(opts); err != nil {
		return o, nil, fmt.Errorf("options.max_current_a: %w", err)
	}
	return o, opts, nil
}

// NewSensor builds a channel's sensor from its configuration.
func NewSensor(cfg sensor.Config, env sensor.Env) (sensor.Sensor, error) {
	o, opts, err := parse(cfg)
	if err != nil {
		return nil, err
	}
	if env.OpenI2C == nil {
		return nil, drv.Missing("I2C bus")
	}
	bus, err := env.OpenI2C(o.Bus)
	if err != nil {
		return nil, fmt.Errorf("ina219: open I2C bus %q: %w", o.Bus, err)
	}
	dev, err := New(bus, opts)
	if err != nil {
		return nil, errors.Join(err, bus.Close())
	}
	return shunt.NewSensor(dev, bus, cfg), nil
}
