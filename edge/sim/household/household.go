package household

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/gridedge/gridedge/edge/agent"
	"github.com/gridedge/gridedge/edge/clock"
	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/wire"
)

// Model is a synthetic home's load as a pure function of time: the same
// seed, meter and instant always give the same watts, whatever order or
// rate samples are taken in.
//
// Channels: sub1 is the kitchen (kettle, oven), sub2 the laundry and fridge
// (washing machine, fridge compressor), sub3 the water heater; mains is
// base load + the three sub-meters + a little noise.
type Model struct {
	seed uint64
}

// New returns the model of meter number meter under seed.
func New(seed int64, meter int) Model {
	return Model{seed: Mix(uint64(seed)*0x9e3779b97f4a7c15 ^ uint64(meter))}
}

// Mix is SplitMix64's finaliser: a cheap, well-spread hash (the simulator
// derives its per-meter randomness with it too).
func Mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unit returns a deterministic number in [0, 1) for the given keys.
func (h Model) unit(keys ...uint64) float64 {
	x := h.seed
	for _, k := range keys {
		x = Mix(x ^ k)
	}
	return float64(x>>11) / (1 << 53)
}

// Appliance keys for the hash.
const (
	kBase = iota + 1
	kFridge
	kKettle
	kOven
	kWasher
	kHeater
	kNoise
	kEnergy
)

// Power returns the four channels' active power in W at t.
func (h Model) Power(t time.Time) (mains, kitchen, laundry, heater float64) {
	l := h.loads(t)
	return l.mains, l.kettle + l.oven, l.washer + l.fridge, l.heater
}

// appliances are the household's appliance channels, in States order.
const appliances = "kettle,oven,washer,fridge,water_heater"

// Appliances returns the household's appliance channels, in order (a new
// slice each call); each reports its on/off state (quantity state: 1 on, 0
// off).
func Appliances() []string { return strings.Split(appliances, ",") }

// States returns the appliances' on/off states at t, in Appliances order.
func (h Model) States(t time.Time) [5]bool {
	l := h.loads(t)
	return [5]bool{l.kettle > 0, l.oven > 0, l.washer > 0, l.fridge > 0, l.heater > 0}
}

// loads is the household's power draw at one instant, per appliance.
type loads struct {
	kettle, oven, washer, fridge, heater, mains float64
}

func (h Model) loads(t time.Time) loads {
	t = t.UTC()
	day := uint64(t.Unix() / 86400)
	sod := time.Duration(t.Unix()%86400)*time.Second + time.Duration(t.Nanosecond()) // time of day, UTC

	base := 60 + 90*h.unit(kBase) // standby, lights, router: 60..150 W
	// Evening lights and TV.
	if sod >= 18*time.Hour && sod < 23*time.Hour {
		base += 120 + 80*h.unit(kBase, day)
	}

	// Fridge: a 40..55 min cycle, compressor on a third of it.
	period := time.Duration(40+15*h.unit(kFridge)) * time.Minute
	phase := time.Duration(h.unit(kFridge, 1) * float64(period))
	fridge := 0.0
	if pos := (time.Duration(t.UnixNano()) + phase) % period; pos < period/3 {
		fridge = 90 + 30*h.unit(kFridge, 2)
	}

	// Kettle: 2.2 kW for 3 minutes, up to three times a day.
	kettle := 0.0
	for i, at := range []time.Duration{7 * time.Hour, 12*time.Hour + 30*time.Minute, 16*time.Hour + 30*time.Minute} {
		if h.unit(kKettle, day, uint64(i)) < 0.3 {
			continue // not today
		}
		on := at + time.Duration(h.unit(kKettle, day, uint64(i), 1)*float64(90*time.Minute))
		if sod >= on && sod < on+3*time.Minute {
			kettle = 2200
		}
	}

	// Oven: most evenings, 40..70 min, thermostat cycling 2 kW on/off.
	oven := 0.0
	if h.unit(kOven, day) < 0.7 {
		on := 17*time.Hour + time.Duration(h.unit(kOven, day, 1)*float64(90*time.Minute))
		length := time.Duration(40+30*h.unit(kOven, day, 2)) * time.Minute
		if sod >= on && sod < on+length {
			if el := sod - on; el < 12*time.Minute || (el/(3*time.Minute))%2 == 0 {
				oven = 2000
			}
		}
	}

	// Washing machine: some days, heating 20 min at 2 kW then 70 min of motor.
	washer := 0.0
	if h.unit(kWasher, day) < 0.35 {
		on := 9*time.Hour + time.Duration(h.unit(kWasher, day, 1)*float64(8*time.Hour))
		switch el := sod - on; {
		case el >= 0 && el < 20*time.Minute:
			washer = 2000
		case el >= 20*time.Minute && el < 90*time.Minute:
			washer = 250 + 200*h.unit(kWasher, day, uint64(el/time.Minute))
		}
	}

	// Water heater: off-peak at night, 3 kW until the tank is hot (1..2.5 h).
	waterHeater := 0.0
	on := time.Hour + time.Duration(h.unit(kHeater, day)*float64(time.Hour))
	if length := time.Duration((1 + 1.5*h.unit(kHeater, day, 1)) * float64(time.Hour)); sod >= on && sod < on+length {
		waterHeater = 3000
	}

	noise := (h.unit(kNoise, uint64(t.UnixNano())) - 0.5) * 10
	return loads{kettle: kettle, oven: oven, washer: washer, fridge: fridge, heater: waterHeater,
		mains: math.Max(0, base+(kettle+oven)+(washer+fridge)+waterHeater+noise)}
}

// householdSensor reports one channel of a Model at the sampler's
// scheduled time. The mains channel also integrates its power into an
// energy counter (Wh); an appliance channel reports its on/off state.
type householdSensor struct {
	h       Model
	channel string
	// appliance is the index in Appliances, or -1 for a power channel.
	appliance int
	// at is the true time of a sample stamp (nil: its wall time). A
	// simulated meter booting without a clock stamps from 1970 until it
	// syncs; its loads still follow the true time.
	at func(clock.Stamp) time.Time
	// The energy counter at the newest sample (last) and the one before
	// (prev), with the power there: a reversed pair asks for the newer
	// sample first.
	energy, prevEnergy float64
	last, prev         time.Time
	lastP, prevP       float64
	// observe, when set, is told the counter at the newest sample.
	observe func(Counter)
}

// NewSensor returns the sensor for one channel of h: mains, sub1, sub2, sub3
// (power; mains also energy) or an appliance of Appliances (its on/off
// state). It reads the agent's scheduled sample time from the context
// (agent.SampleTime); at, when not nil, maps a sample's stamp to the true
// time the loads follow (a simulated meter without a clock).
func NewSensor(h Model, channel string, at func(clock.Stamp) time.Time, opts ...SensorOption) (sensor.Sensor, error) {
	s := &householdSensor{h: h, channel: channel, appliance: -1, at: at}
	switch channel {
	case "mains", "sub1", "sub2", "sub3":
	default:
		s.appliance = slices.Index(Appliances(), channel)
		if s.appliance < 0 {
			return nil, fmt.Errorf("household profile has channels mains, sub1, sub2, sub3 and %s, not %q",
				strings.Join(Appliances(), ", "), channel)
		}
	}
	// Meters are installed with some history on the counter.
	s.energy = math.Round(1e6 * h.unit(kEnergy))
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Counter is the mains energy counter at a sample: Energy Wh at At, when
// the mains power was Power W.
type Counter struct {
	At     time.Time `json:"at"`
	Energy float64   `json:"energy_wh"`
	Power  float64   `json:"power_w"`
}

// SensorOption changes a sensor of NewSensor.
type SensorOption func(*householdSensor)

// WithCounter continues the mains counter from c (a zero c: the model's
// installed value) and calls observe (when not nil) with the counter at the
// newest sample after each sample, so a caller can save it and continue
// it in a later run. Other channels ignore it.
func WithCounter(c Counter, observe func(Counter)) SensorOption {
	return func(s *householdSensor) {
		if !c.At.IsZero() {
			s.last, s.lastP, s.energy = c.At, c.Power, c.Energy
		}
		s.observe = observe
	}
}

// maxCounterSteps bounds the steps ContinueCounter integrates.
const maxCounterSteps = 1_000_000

// ContinueCounter advances the mains counter c to the last point of its
// step grid at or before to, integrating the model's mains power as a meter
// sampling every step would (left Riemann sum): the counter a meter that
// kept counting while its gateway was off shows when sampling resumes. It
// takes at most 1,000,000 steps, coarser ones over a longer gap.
func (h Model) ContinueCounter(c Counter, to time.Time, step time.Duration) Counter {
	if c.At.IsZero() || step <= 0 || !to.After(c.At) {
		return c
	}
	if n := to.Sub(c.At) / step; n > maxCounterSteps {
		step = to.Sub(c.At) / maxCounterSteps
	}
	for next := c.At.Add(step); !next.After(to); next = next.Add(step) {
		c.Energy += c.Power * step.Hours()
		c.At = next
		c.Power, _, _, _ = h.Power(next)
	}
	return c
}

func (s *householdSensor) Sense(ctx context.Context) ([]sensor.Value, error) {
	st, ok := agent.SampleTime(ctx)
	if !ok {
		return nil, errors.New("household sensor needs the sample time")
	}
	t := time.Unix(0, st.WallNs)
	if s.at != nil {
		t = s.at(st)
	}
	if s.appliance >= 0 {
		v := 0.0
		if s.h.States(t)[s.appliance] {
			v = 1
		}
		return []sensor.Value{{Quantity: wire.Quantity_QUANTITY_STATE, Value: v}}, nil
	}
	mains, kitchen, laundry, heater := s.h.Power(t)
	p := mains
	switch s.channel {
	case "sub1":
		p = kitchen
	case "sub2":
		p = laundry
	case "sub3":
		p = heater
	}
	out := []sensor.Value{{Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: p}}
	if s.channel == "mains" {
		out = append(out, sensor.Value{Quantity: wire.Quantity_QUANTITY_ENERGY, Value: s.integrate(t, p)})
		if s.observe != nil {
			s.observe(Counter{At: s.last, Energy: s.energy, Power: s.lastP})
		}
	}
	return out, nil
}

// integrate returns the energy counter at t: a left Riemann sum over the
// samples, what a meter sampling at this rate would count. A sample older
// than the newest (the second of a reversed pair) is counted from the one
// before, so the counter never goes backwards in time.
func (s *householdSensor) integrate(t time.Time, p float64) float64 {
	switch {
	case s.last.IsZero():
	case t.After(s.last):
		s.prev, s.prevP, s.prevEnergy = s.last, s.lastP, s.energy
		s.energy += s.lastP * t.Sub(s.last).Hours()
	case !s.prev.IsZero() && t.After(s.prev):
		return s.prevEnergy + s.prevP*t.Sub(s.prev).Hours()
	default:
		return s.energy
	}
	s.last, s.lastP = t, p
	return s.energy
}

func (s *householdSensor) String() string { return "sim-household:" + s.channel }

// Instant: Sense computes from the model, without I/O (sensor.Instant).
func (s *householdSensor) Instant() bool { return true }
func (s *householdSensor) Close() error  { return nil }

// Driver is the household profile as a sensor driver, so the real
// gridedge-agent can run without hardware (demos, soak tests):
//
//	channels:
//	  - {name: mains, driver: sim-household, interval: 10s, quantities: [active_power, energy], options: {meter: 1, seed: 1}}
//	  - {name: sub1, driver: sim-household, options: {meter: 1}}
//
// Channel names must be mains, sub1, sub2, sub3 or an appliance. The energy
// counter starts from the model's initial value at each start (it is not
// persisted).
func Driver() sensor.Driver {
	return sensor.Driver{
		Name:    "sim-household",
		Summary: "simulated household meter (channels mains, sub1..sub3); options: meter, seed",
		New: func(cfg sensor.Config, _ sensor.Env) (sensor.Sensor, error) {
			m, err := parse(cfg)
			if err != nil {
				return nil, err
			}
			return NewSensor(m, cfg.Channel, nil)
		},
		Check: func(cfg sensor.Config) error {
			_, err := parse(cfg)
			return err
		},
	}
}

// parse decodes the options and checks the channel name.
func parse(cfg sensor.Config) (Model, error) {
	var o struct {
		Meter int   `yaml:"meter"`
		Seed  int64 `yaml:"seed"`
	}
	if err := cfg.DecodeOptions(&o); err != nil {
		return Model{}, err
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	m := New(o.Seed, o.Meter)
	if _, err := NewSensor(m, cfg.Channel, nil); err != nil {
		return Model{}, fmt.Errorf("name: %w", err)
	}
	return m, nil
}
