package ade7953

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"

	"github.com/gridedge/gridedge/hardware/internal/drv"
	"github.com/gridedge/gridedge/hardware/internal/state"
	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/wire"
)

// DriverName is the name channels use in the agent configuration.
const DriverName = "ade7953"

// stateFile holds the channel's cumulative energy in env.StateDir.
const stateFile = "ade7953-energy.json"

// Options are a channel's driver options.
type Options struct {
	// Port is the SPI port as periph names it ("/dev/spidev0.0", "SPI0.0");
	// empty means the first port.
	Port string `yaml:"port"`
	// Channel is the current input, "a" (default) or "b".
	Channel string `yaml:"channel"`
	// Calibration constants (see hardware/README.md). A quantity whose
	// constant is missing cannot be configured.
	VoltsPerLSB float64 `yaml:"volts_per_lsb"`
	AmpsPerLSB  float64 `yaml:"amps_per_lsb"`
	WhPerLSB    float64 `yaml:"wh_per_lsb"`
	VARhPerLSB  float64 `yaml:"varh_per_lsb"`
	VAhPerLSB   float64 `yaml:"vah_per_lsb"`
	// Optional instantaneous power constants. When set, power is the
	// chip's instantaneous reading (available from the first Sense);
	// otherwise it is the average over the interval from the energy
	// registers (the first Sense has none).
	WattsPerLSB float64 `yaml:"w_per_lsb"`
	VARPerLSB   float64 `yaml:"var_per_lsb"`
	VAPerLSB    float64 `yaml:"va_per_lsb"`
	// SPIHz is the SPI clock (default 1 MHz, at most 2 MHz).
	SPIHz int64 `yaml:"spi_hz"`
	// PersistEverySeconds bounds how often the energy counter is written to
	// the state directory (default 60): more often costs flash wear, less
	// often loses more energy at a power cut.
	PersistEverySeconds int `yaml:"persist_every_s"`
}

// Driver is the registry entry.
func Driver() sensor.Driver {
	return sensor.Driver{Name: DriverName, Summary: "Analog Devices ADE7953 AC energy IC on SPI: V, A, W, var, VA, PF, Hz, Wh", New: NewSensor, Check: Check}
}

// Check validates a channel's configuration without opening the port, with
// the rules NewSensor applies.
func Check(cfg sensor.Config) error {
	_, _, _, err := parse(cfg)
	return err
}

type persisted struct {
	EnergyWh float64 `json:"energy_wh"`
}

// parse decodes and checks the options; every problem names its option.
// It returns the quantities the calibration makes available and the
// current input.
func parse(cfg sensor.Config) (Options, []wire.Quantity, Channel, error) {
	o := Options{PersistEverySeconds: 60}
	if err := cfg.DecodeOptions(&o); err != nil {
		return o, nil, 0, err
	}
	var p drv.Problems
	offered := []wire.Quantity{wire.Quantity_QUANTITY_POWER_FACTOR, wire.Quantity_QUANTITY_FREQUENCY}
	for _, c := range []struct {
		name   string
		perLSB float64
		q      []wire.Quantity
	}{
		{"volts_per_lsb", o.VoltsPerLSB, []wire.Quantity{wire.Quantity_QUANTITY_VOLTAGE}},
		{"amps_per_lsb", o.AmpsPerLSB, []wire.Quantity{wire.Quantity_QUANTITY_CURRENT}},
		{"wh_per_lsb", o.WhPerLSB, []wire.Quantity{wire.Quantity_QUANTITY_ACTIVE_POWER, wire.Quantity_QUANTITY_ENERGY}},
		{"varh_per_lsb", o.VARhPerLSB, []wire.Quantity{wire.Quantity_QUANTITY_REACTIVE_POWER}},
		{"vah_per_lsb", o.VAhPerLSB, []wire.Quantity{wire.Quantity_QUANTITY_APPARENT_POWER}},
		{"w_per_lsb", o.WattsPerLSB, []wire.Quantity{wire.Quantity_QUANTITY_ACTIVE_POWER}},
		{"var_per_lsb", o.VARPerLSB, []wire.Quantity{wire.Quantity_QUANTITY_REACTIVE_POWER}},
		{"va_per_lsb", o.VAPerLSB, []wire.Quantity{wire.Quantity_QUANTITY_APPARENT_POWER}},
	} {
		if c.perLSB < 0 || math.IsNaN(c.perLSB) || math.IsInf(c.perLSB, 0) {
			p.Option(c.name, "calibration constants must be positive (or absent), got %v", c.perLSB)
			continue
		}
		if c.perLSB > 0 {
			for _, q := range c.q {
				if !slices.Contains(offered, q) {
					offered = append(offered, q)
				}
			}
		}
	}
	if err := drv.CheckQuantities(cfg, offered...); err != nil {
		p.Add(fmt.Errorf("%w (a missing *_per_lsb calibration option disables its quantities)", err))
	}
	ch := ChannelA
	switch strings.ToLower(o.Channel) {
	case "", "a":
	case "b":
		ch = ChannelB
	default:
		p.Option("channel", "must be a or b, got %q", o.Channel)
	}
	if o.SPIHz < 0 || physic.Frequency(o.SPIHz)*physic.Hertz > maxSPIFrequency {
		p.Option("spi_hz", "must be 1..%d (0 = 1 MHz), got %d", int64(maxSPIFrequency/physic.Hertz), o.SPIHz)
	}
	if o.PersistEverySeconds < 0 {
		p.Option("persist_every_s", "must be >= 0, got %d", o.PersistEverySeconds)
	}
	return o, offered, ch, p.Err()
}

// NewSensor builds a channel's sensor from its configuration.
func NewSensor(cfg sensor.Config, env sensor.Env) (sensor.Sensor, error) {
	o, offered, ch, err := parse(cfg)
	if err != nil {
		return nil, err
	}
	if env.OpenSPI == nil {
		return nil, drv.Missing("SPI port")
	}
	port, err := env.OpenSPI(o.Port)
	if err != nil {
		return nil, fmt.Errorf("ade7953: open SPI port %q: %w", o.Port, err)
	}
	dev, err := New(port, &Opts{Channel: ch, Frequency: physic.Frequency(o.SPIHz) * physic.Hertz, Calibration: Calibration{
		VoltsPerLSB: o.VoltsPerLSB, AmpsPerLSB: o.AmpsPerLSB, WhPerLSB: o.WhPerLSB, VARhPerLSB: o.VARhPerLSB, VAhPerLSB: o.VAhPerLSB,
		WattsPerLSB: o.WattsPerLSB, VARPerLSB: o.VARPerLSB, VAPerLSB: o.VAPerLSB,
	}})
	if err != nil {
		return nil, errors.Join(err, port.Close())
	}
	// A channel that names no quantities gets every calibrated one: an
	// uncalibrated quantity would read as a plausible-looking 0.
	if len(cfg.Quantities) == 0 {
		cfg.Quantities = offered
	}
	s := &Sensor{dev: dev, port: port, cfg: cfg, now: env.Now, log: drv.Logger(env.Logger),
		persistEvery: time.Duration(o.PersistEverySeconds) * time.Second}
	if s.now == nil {
		s.now = time.Now
	}
	if env.StateDir == "" {
		s.log.Warn("ade7953: no state directory: the energy counter restarts from 0 at every start", "channel", cfg.Channel)
	} else {
		s.statePath = filepath.Join(env.StateDir, stateFile)
		var p persisted
		if _, err := state.Load(s.statePath, &p); err != nil {
			return nil, errors.Join(err, port.Close())
		}
		s.totalWh = p.EnergyWh
	}
	return s, nil
}

// Sensor adapts a Dev to sensor.Sensor. It keeps the cumulative energy
// (the chip only holds energy since the last read) and derives average
// power over each interval from the energy accumulated in it.
type Sensor struct {
	dev          *Dev
	port         spi.PortCloser
	cfg          sensor.Config
	now          func() time.Time
	log          *slog.Logger
	statePath    string
	persistEvery time.Duration

	mu        sync.Mutex
	totalWh   float64
	last      time.Time // time of the previous successful Sense
	lastSaved time.Time
}

// Sense reads the chip. Power values are averages since the previous Sense,
// so the first Sense after start reports none.
func (s *Sensor) Sense(ctx context.Context) ([]sensor.Value, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var m Measurement
	if err := s.dev.Sense(&m); err != nil {
		return nil, err
	}
	now := s.now()
	s.totalWh += m.ActiveWh
	v := drv.NewValues(s.cfg)
	v.Add(wire.Quantity_QUANTITY_VOLTAGE, float64(m.Voltage)/float64(physic.Volt))
	v.Add(wire.Quantity_QUANTITY_CURRENT, float64(m.Current)/float64(physic.Ampere))
	// Each power is the instantaneous register when calibrated, else the
	// interval average from energy (Wh in dt → W), when there is an interval.
	interval := !s.last.IsZero() && now.After(s.last)
	perHour := 0.0
	if interval {
		perHour = float64(time.Hour) / float64(now.Sub(s.last))
	}
	cal := s.dev.opts.Calibration
	for _, p := range []struct {
		q            wire.Quantity
		instPerLSB   float64
		inst, energy float64
		energyPerLSB float64
	}{
		{wire.Quantity_QUANTITY_ACTIVE_POWER, cal.WattsPerLSB, float64(m.ActivePower) / float64(physic.Watt), m.ActiveWh, cal.WhPerLSB},
		{wire.Quantity_QUANTITY_REACTIVE_POWER, cal.VARPerLSB, m.ReactiveVAR, m.ReactiveVARh, cal.VARhPerLSB},
		{wire.Quantity_QUANTITY_APPARENT_POWER, cal.VAPerLSB, m.ApparentVA, m.ApparentVAh, cal.VAhPerLSB},
	} {
		switch {
		case p.instPerLSB > 0:
			v.Add(p.q, p.inst)
		case p.energyPerLSB > 0 && interval:
			v.Add(p.q, p.energy*perHour)
		}
	}
	v.Add(wire.Quantity_QUANTITY_POWER_FACTOR, m.PowerFactor)
	v.Add(wire.Quantity_QUANTITY_FREQUENCY, float64(m.Frequency)/float64(physic.Hertz))
	v.Add(wire.Quantity_QUANTITY_ENERGY, s.totalWh)
	s.last = now
	if s.statePath != "" && now.Sub(s.lastSaved) >= s.persistEvery {
		if err := state.Save(s.statePath, persisted{EnergyWh: s.totalWh}); err != nil {
			return v.List(), fmt.Errorf("ade7953: persist energy: %w", err)
		}
		s.lastSaved = now
	}
	return v.List(), nil
}

func (s *Sensor) String() string { return fmt.Sprintf("%s@%s", s.dev, s.port) }

// Close saves the energy counter and releases the SPI port.
func (s *Sensor) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.statePath != "" {
		err = state.Save(s.statePath, persisted{EnergyWh: s.totalWh})
	}
	return errors.Join(err, s.port.Close())
}
