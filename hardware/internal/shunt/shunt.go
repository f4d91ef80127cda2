package shunt

import (
	"context"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"

	"github.com/gridedge/gridedge/hardware/internal/drv"
	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/wire"
)

// PowerMonitor is one conversion of a shunt power monitor.
type PowerMonitor struct {
	Shunt   physic.ElectricPotential
	Voltage physic.ElectricPotential // bus voltage, load side of the shunt
	Current physic.ElectricCurrent
	Power   physic.Power
}

// Chip is a shunt monitor driver's device.
type Chip interface {
	Sense(m *PowerMonitor) error
	String() string
}

// Sensor adapts a Chip on an I2C bus to sensor.Sensor.
type Sensor struct {
	chip Chip
	bus  i2c.BusCloser
	cfg  sensor.Config
}

// NewSensor returns the adapter; Close closes bus.
func NewSensor(chip Chip, bus i2c.BusCloser, cfg sensor.Config) *Sensor {
	return &Sensor{chip: chip, bus: bus, cfg: cfg}
}

// Sense reads the chip and returns the wanted quantities in V, A and W.
func (s *Sensor) Sense(ctx context.Context) ([]sensor.Value, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var m PowerMonitor
	if err := s.chip.Sense(&m); err != nil {
		return nil, err
	}
	v := drv.NewValues(s.cfg)
	v.Add(wire.Quantity_QUANTITY_VOLTAGE, float64(m.Voltage)/float64(physic.Volt))
	v.Add(wire.Quantity_QUANTITY_CURRENT, float64(m.Current)/float64(physic.Ampere))
	v.Add(wire.Quantity_QUANTITY_ACTIVE_POWER, float64(m.Power)/float64(physic.Watt))
	return v.List(), nil
}

func (s *Sensor) String() string { return s.chip.String() }

// Close releases the bus.
func (s *Sensor) Close() error { return s.bus.Close() }
