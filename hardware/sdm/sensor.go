package sdm

import (
	"context"
	"errors"
	"fmt"

	"github.com/gridedge/gridedge/hardware/internal/drv"
	"github.com/gridedge/gridedge/hardware/modbus"
	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/wire"
)

// Driver names.
const (
	DriverSDM120 = "sdm120"
	DriverSDM630 = "sdm630"
)

// Options are a channel's driver options.
type Options struct {
	drv.SerialOptions `yaml:",inline"`
	// Address is the meter's Modbus address (default 1).
	Address byte `yaml:"address"`
	// Phase is 1, 2, 3 or "total" (SDM630; default 1).
	Phase string `yaml:"phase"`
	// Energy is import (default), export or total.
	Energy Energy `yaml:"energy"`
}

// Drivers are the registry entries for both models.
func Drivers() []sensor.Driver {
	return []sensor.Driver{
		{Name: DriverSDM120, Summary: "Eastron SDM120 single-phase meter on Modbus-RTU: V, A, W, VA, var, PF, Hz, Wh", New: factory(SDM120), Check: checker(SDM120)},
		{Name: DriverSDM630, Summary: "Eastron SDM630 three-phase meter on Modbus-RTU, one phase or totals per channel", New: factory(SDM630), Check: checker(SDM630)},
	}
}

func factory(model Model) sensor.Factory {
	return func(cfg sensor.Config, env sensor.Env) (sensor.Sensor, error) {
		return NewSensor(model, cfg, env)
	}
}

func checker(model Model) sensor.Checker {
	return func(cfg sensor.Config) error {
		_, _, err := parse(model, cfg)
		return err
	}
}

// parse decodes and checks the options; every problem names its option.
func parse(model Model, cfg sensor.Config) (Options, *Opts, error) {
	var o Options
	if err := cfg.DecodeOptions(&o); err != nil {
		return o, nil, err
	}
	var p drv.Problems
	p.Add(drv.CheckQuantities(cfg, Quantities()...))
	o.SerialOptions.Check(&p)
	opts := &Opts{Model: model, Address: o.Address, Phase: 1, Energy: o.Energy}
	switch o.Phase {
	case "", "1":
	case "2":
		opts.Phase = 2
	case "3":
		opts.Phase = 3
	case "total":
		opts.Phase = PhaseTotal
	default:
		p.Option("phase", "must be 1, 2, 3 or total, got %q", o.Phase)
	}
	if err := p.Err(); err != nil {
		return o, nil, err
	}
	// New does no I/O: it checks address, phase (per model) and energy.
	if _, err := New(nil, opts); err != nil {
		return o, nil, fmt.Errorf("options: %w", err)
	}
	return o, opts, nil
}

// NewSensor builds a channel's sensor for a meter of the given model.
func NewSensor(model Model, cfg sensor.Config, env sensor.Env) (sensor.Sensor, error) {
	o, opts, err := parse(model, cfg)
	if err != nil {
		return nil, err
	}
	c, port, err := drv.OpenModbus(env, o.SerialOptions, model.DefaultBaud())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", model, err)
	}
	dev, err := New(c, opts)
	if err != nil {
		return nil, errors.Join(err, port.Close())
	}
	var want []wire.Quantity
	for _, q := range Quantities() {
		if cfg.Wants(q) {
			want = append(want, q)
		}
	}
	return &Sensor{dev: dev, port: port, want: want, name: fmt.Sprintf("%s@%s", dev, o.Port)}, nil
}

// Sensor adapts a Dev to sensor.Sensor.
type Sensor struct {
	dev  *Dev
	port interface{ Close() error }
	want []wire.Quantity
	name string
}

// Sense reads each wanted quantity (one request each). A refused or
// garbled quantity does not hide the others: the values read are returned
// with the errors. A meter that does not answer at all ends the round at
// the first timeout, so a dead line costs one timeout, not one per quantity.
func (s *Sensor) Sense(ctx context.Context) ([]sensor.Value, error) {
	var out []sensor.Value
	var errs []error
	for _, q := range s.want {
		if err := ctx.Err(); err != nil {
			return out, errors.Join(append(errs, err)...)
		}
		v, err := s.dev.Read(ctx, q)
		if err != nil {
			errs = append(errs, err)
			if errors.Is(err, modbus.ErrTimeout) {
				break
			}
			continue
		}
		out = append(out, sensor.Value{Quantity: q, Value: v})
	}
	return out, errors.Join(errs...)
}

// String is e.g. "sdm630@0x01/L2@/dev/ttyUSB0".
func (s *Sensor) String() string { return s.name }

// Close releases the serial port.
func (s *Sensor) Close() error { return s.port.Close() }
