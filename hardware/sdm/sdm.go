package sdm

import (
	"context"
	"fmt"
	"math"

	"periph.io/x/conn/v3/physic"

	"github.com/gridedge/gridedge/hardware/modbus"
	"github.com/gridedge/gridedge/shared/wire"
)

// Model is the meter type.
type Model int

const (
	SDM120 Model = 120
	SDM630 Model = 630
)

func (m Model) String() string { return fmt.Sprintf("sdm%d", int(m)) }

// DefaultBaud is the factory line speed of each model (changeable in the
// meter's set-up menu; the configuration must match it).
func (m Model) DefaultBaud() int {
	if m == SDM120 {
		return 2400
	}
	return 9600
}

// PhaseTotal selects the SDM630's system totals instead of one phase.
const PhaseTotal = 0

// Energy selects which energy register a channel reports.
type Energy string

const (
	EnergyImport Energy = "import" // 0x0048
	EnergyExport Energy = "export" // 0x004A
	EnergyTotal  Energy = "total"  // 0x0156, import + export
)

// Register addresses (see package doc).
const (
	regVoltage1   uint16 = 0x0000
	regCurrent1   uint16 = 0x0006
	regPower1     uint16 = 0x000C
	regApparent1  uint16 = 0x0012
	regReactive1  uint16 = 0x0018
	regPF1        uint16 = 0x001E
	regVoltageAvg uint16 = 0x002A
	regCurrentSum uint16 = 0x0030
	regPowerTotal uint16 = 0x0034
	regVATotal    uint16 = 0x0038
	regVArTotal   uint16 = 0x003C
	regPFTotal    uint16 = 0x003E
	regFrequency  uint16 = 0x0046
	regImportKWh  uint16 = 0x0048
	regExportKWh  uint16 = 0x004A
	regTotalKWh   uint16 = 0x0156
	phaseStride   uint16 = 2 // phase n register = phase 1 register + 2(n-1)
)

// Opts configures one meter channel.
type Opts struct {
	Model Model
	// Address is the meter's Modbus address 1..247; 0 means 1 (factory).
	Address byte
	// Phase 1..3, or PhaseTotal (SDM630 only).
	Phase int
	// Energy register; empty means EnergyImport.
	Energy Energy
}

// Dev is one meter (or one phase of one) on a Modbus line.
type Dev struct {
	c     *modbus.Client
	opts  Opts
	table map[wire.Quantity]uint16
	scale map[wire.Quantity]float64
}

// New maps the channel's phase and energy choice to registers. It does no
// I/O.
func New(c *modbus.Client, opts *Opts) (*Dev, error) {
	o := *opts
	if o.Address == 0 {
		o.Address = 1
	}
	if o.Address > 247 {
		return nil, fmt.Errorf("sdm: address %d outside 1..247", o.Address)
	}
	if o.Energy == "" {
		o.Energy = EnergyImport
	}
	switch o.Model {
	case SDM120:
		if o.Phase != 1 {
			return nil, fmt.Errorf("sdm120: phase %d: a single-phase meter has only phase 1", o.Phase)
		}
	case SDM630:
		if o.Phase < PhaseTotal || o.Phase > 3 {
			return nil, fmt.Errorf("sdm630: phase %d outside 1..3 (or 0 for totals)", o.Phase)
		}
	default:
		return nil, fmt.Errorf("sdm: unknown model %d", int(o.Model))
	}
	var energy uint16
	switch o.Energy {
	case EnergyImport:
		energy = regImportKWh
	case EnergyExport:
		energy = regExportKWh
	case EnergyTotal:
		energy = regTotalKWh
	default:
		return nil, fmt.Errorf("sdm: energy %q not import, export or total", o.Energy)
	}
	d := &Dev{c: c, opts: o, table: map[wire.Quantity]uint16{
		wire.Quantity_QUANTITY_FREQUENCY: regFrequency,
		wire.Quantity_QUANTITY_ENERGY:    energy,
	}, scale: map[wire.Quantity]float64{wire.Quantity_QUANTITY_ENERGY: 1000}} // kWh → Wh
	if o.Phase == PhaseTotal {
		d.table[wire.Quantity_QUANTITY_VOLTAGE] = regVoltageAvg
		d.table[wire.Quantity_QUANTITY_CURRENT] = regCurrentSum
		d.table[wire.Quantity_QUANTITY_ACTIVE_POWER] = regPowerTotal
		d.table[wire.Quantity_QUANTITY_APPARENT_POWER] = regVATotal
		d.table[wire.Quantity_QUANTITY_REACTIVE_POWER] = regVArTotal
		d.table[wire.Quantity_QUANTITY_POWER_FACTOR] = regPFTotal
	} else {
		off := uint16(o.Phase-1) * phaseStride
		d.table[wire.Quantity_QUANTITY_VOLTAGE] = regVoltage1 + off
		d.table[wire.Quantity_QUANTITY_CURRENT] = regCurrent1 + off
		d.table[wire.Quantity_QUANTITY_ACTIVE_POWER] = regPower1 + off
		d.table[wire.Quantity_QUANTITY_APPARENT_POWER] = regApparent1 + off
		d.table[wire.Quantity_QUANTITY_REACTIVE_POWER] = regReactive1 + off
		d.table[wire.Quantity_QUANTITY_POWER_FACTOR] = regPF1 + off
	}
	return d, nil
}

// Quantities lists what the meter reports, in reading order.
func Quantities() []wire.Quantity {
	return []wire.Quantity{
		wire.Quantity_QUANTITY_VOLTAGE,
		wire.Quantity_QUANTITY_CURRENT,
		wire.Quantity_QUANTITY_ACTIVE_POWER,
		wire.Quantity_QUANTITY_APPARENT_POWER,
		wire.Quantity_QUANTITY_REACTIVE_POWER,
		wire.Quantity_QUANTITY_POWER_FACTOR,
		wire.Quantity_QUANTITY_FREQUENCY,
		wire.Quantity_QUANTITY_ENERGY,
	}
}

// String is e.g. "sdm630@0x01/L2".
func (d *Dev) String() string {
	phase := "total"
	if d.opts.Phase != PhaseTotal {
		phase = fmt.Sprintf("L%d", d.opts.Phase)
	}
	return fmt.Sprintf("%s@0x%02x/%s", d.opts.Model, d.opts.Address, phase)
}

// Register returns the input register holding q for this channel.
func (d *Dev) Register(q wire.Quantity) (uint16, bool) {
	r, ok := d.table[q]
	return r, ok
}

// ReadFloat reads the float32 at input registers reg, reg+1 (high word
// first). NaN and infinities are errors: a meter that sends them is not
// measuring.
func (d *Dev) ReadFloat(ctx context.Context, reg uint16) (float64, error) {
	r, err := d.c.ReadInputRegisters(ctx, d.opts.Address, reg, 2)
	if err != nil {
		return 0, fmt.Errorf("%s: register 0x%04x: %w", d, reg, err)
	}
	v := float64(math.Float32frombits(uint32(r[0])<<16 | uint32(r[1])))
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s: register 0x%04x holds %v: %w", d, reg, v, modbus.ErrUnexpectedResponse)
	}
	return v, nil
}

// Measurement is one reading of a channel (one phase or the totals).
type Measurement struct {
	Voltage       physic.ElectricPotential
	Current       physic.ElectricCurrent
	ActivePower   physic.Power
	ApparentPower float64 // VA
	ReactivePower float64 // var
	PowerFactor   float64 // signed: negative for reverse current
	Frequency     physic.Frequency
	// EnergyWh is the selected energy register in Wh. Not a physic.Energy:
	// that type (int64 nJ) overflows at about 2562 kWh.
	EnergyWh float64
}

// Sense reads every quantity (one request each) into m.
func (d *Dev) Sense(ctx context.Context, m *Measurement) error {
	var v [8]float64
	for i, q := range Quantities() {
		x, err := d.Read(ctx, q)
		if err != nil {
			return err
		}
		v[i] = x
	}
	*m = Measurement{
		Voltage:       physic.ElectricPotential(math.Round(v[0] * float64(physic.Volt))),
		Current:       physic.ElectricCurrent(math.Round(v[1] * float64(physic.Ampere))),
		ActivePower:   physic.Power(math.Round(v[2] * float64(physic.Watt))),
		ApparentPower: v[3],
		ReactivePower: v[4],
		PowerFactor:   v[5],
		Frequency:     physic.Frequency(math.Round(v[6] * float64(physic.Hertz))),
		EnergyWh:      v[7],
	}
	return nil
}

// Read reads quantity q in base units (V, A, W, VA, var, Hz, Wh; power
// factor signed, negative for reverse current).
func (d *Dev) Read(ctx context.Context, q wire.Quantity) (float64, error) {
	reg, ok := d.table[q]
	if !ok {
		return 0, fmt.Errorf("%s: no register for %s", d, q.Name())
	}
	v, err := d.ReadFloat(ctx, reg)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", q.Name(), err)
	}
	if s, ok := d.scale[q]; ok {
		v *= s
	}
	return v, nil
}
