package sensor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"time"

	"gopkg.in/yaml.v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/spi"

	"github.com/gridedge/gridedge/shared/wire"
	"github.com/gridedge/gridedge/shared/yamlpath"
)

// Value is one measured quantity, in the quantity's base unit (W, Wh, V, A,
// Hz, var, VA, °C; power factor dimensionless).
type Value struct {
	Quantity wire.Quantity
	Value    float64
}

// Sensor produces the values of one channel.
type Sensor interface {
	// Sense takes one measurement of every quantity the sensor was
	// configured for. It returns promptly when ctx is done. A partial result
	// is allowed together with a non-nil error; the caller keeps the values
	// and counts the error.
	Sense(ctx context.Context) ([]Value, error)
	// String names the sensor instance for logs and status, e.g.
	// "ina219@i2c-1:0x40".
	String() string
	// Close releases the bus or pin. Sense is not called after Close.
	Close() error
}

// Instant is implemented by sensors whose Sense computes its values from
// memory, without I/O, and returns at once (simulated sensors). The agent
// senses such a channel on its schedule's goroutine instead of giving it a
// goroutine of its own; a sensor that can block must not implement it (or
// must return false), so a hung bus costs only its own channel's samples.
type Instant interface {
	Instant() bool
}

// IsInstant reports whether s declares itself Instant.
func IsInstant(s Sensor) bool {
	i, ok := s.(Instant)
	return ok && i.Instant()
}

// Config is one channel's sensor configuration as the agent parsed it.
type Config struct {
	// Channel is the channel name readings are published under.
	Channel string
	// Driver is the registered driver name.
	Driver string
	// Quantities the channel should report; empty means the driver's default.
	Quantities []wire.Quantity
	// Options is the driver-specific part of the configuration, decoded by
	// the driver with DecodeOptions.
	Options map[string]any
}

// DecodeOptions decodes c.Options into v (a pointer to a struct with yaml
// tags). Unknown keys and values of the wrong type are errors, one line
// each, that name the option ("options.adress: unknown field (did you mean
// "address"?); known: bus, address, …"), so a typo in a configuration file
// is reported instead of silently ignored. Registry.New and Registry.Check
// add the channel and driver.
func (c Config) DecodeOptions(v any) error {
	if len(c.Options) == 0 {
		return nil
	}
	var n yaml.Node
	if err := n.Encode(c.Options); err != nil {
		return fmt.Errorf("options: %w", err)
	}
	return yamlpath.Decode(&n, v, "options")
}

// Wants reports whether the channel asked for q (or asked for nothing, which
// means every quantity the driver offers).
func (c Config) Wants(q wire.Quantity) bool {
	return len(c.Quantities) == 0 || slices.Contains(c.Quantities, q)
}

// SerialPort is a byte stream to a UART or RS-485 adapter with a settable
// read timeout, as Modbus-RTU and PZEM drivers need.
type SerialPort interface {
	io.ReadWriteCloser
	// SetReadTimeout bounds each Read; a Read that times out returns what it
	// has (possibly 0 bytes) and a nil error or os.ErrDeadlineExceeded.
	SetReadTimeout(d time.Duration) error
	// Flush discards unread input (stale bytes from a previous exchange).
	Flush() error
}

// Env gives drivers their buses and a place for state that must survive a
// reboot (energy counters). Any opener may be nil when the platform has no
// such bus; a driver then returns an error naming what is missing.
type Env struct {
	OpenI2C    func(bus string) (i2c.BusCloser, error)
	OpenSPI    func(port string) (spi.PortCloser, error)
	OpenSerial func(port string, baud int) (SerialPort, error)
	OpenGPIO   func(pin string) (gpio.PinIO, error)
	// StateDir is a directory private to this channel that survives reboots.
	StateDir string
	Logger   *slog.Logger
	// Now returns the current time; drivers that time intervals use it so
	// tests can drive them.
	Now func() time.Time
}

// Factory builds a sensor from its configuration.
type Factory func(cfg Config, env Env) (Sensor, error)

// Checker validates a channel's configuration (options, quantities) without
// touching hardware, with the same rules the driver's Factory applies
// before it opens a bus.
type Checker func(cfg Config) error

// Driver describes a registered driver.
type Driver struct {
	Name string
	// Summary is one line for `gridedge-agent -h` and probe output.
	Summary string
	New     Factory
	// Check validates a configuration without opening anything
	// (`gridedge-agent -check`). Nil when the driver has nothing to check
	// beyond what building it reveals.
	Check Checker
}

// Registry maps driver names to factories. The zero value is not usable;
// use NewRegistry.
type Registry struct {
	drivers map[string]Driver
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{drivers: map[string]Driver{}} }

// Register adds a driver. It panics on a duplicate name: registration happens
// once at start-up and a duplicate is a programming error.
func (r *Registry) Register(d Driver) {
	if _, dup := r.drivers[d.Name]; dup {
		panic("sensor: driver registered twice: " + d.Name)
	}
	r.drivers[d.Name] = d
}

// New builds the sensor for cfg with the driver it names.
func (r *Registry) New(cfg Config, env Env) (Sensor, error) {
	d, ok := r.drivers[cfg.Driver]
	if !ok {
		return nil, fmt.Errorf("channel %q: unknown driver %q (known: %v)", cfg.Channel, cfg.Driver, r.Names())
	}
	s, err := d.New(cfg, env)
	if err != nil {
		return nil, fmt.Errorf("channel %q: driver %s: %w", cfg.Channel, cfg.Driver, err)
	}
	return s, nil
}

// Check validates cfg with its driver's Checker, without opening any bus:
// an unknown driver, unknown or malformed options, out-of-range values and
// quantities the driver cannot measure are errors. Each problem is one line
// naming the field within the channel ("options.address: …",
// "quantities: …"); the caller names the channel.
func (r *Registry) Check(cfg Config) error {
	d, ok := r.drivers[cfg.Driver]
	if !ok {
		return fmt.Errorf("driver: unknown driver %q (known: %v)", cfg.Driver, r.Names())
	}
	if d.Check == nil {
		return nil
	}
	return d.Check(cfg)
}

// Names lists the registered driver names, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.drivers))
	for n := range r.drivers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Drivers lists the registered drivers sorted by name.
func (r *Registry) Drivers() []Driver {
	out := make([]Driver, 0, len(r.drivers))
	for _, n := range r.Names() {
		out = append(out, r.drivers[n])
	}
	return out
}
