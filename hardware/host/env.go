package host

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	periphhost "periph.io/x/host/v3"

	"github.com/gridedge/gridedge/hardware/sensor"
)

// Host is this machine's buses. Create one per process with New.
type Host struct {
	serial *serialPool
	logger *slog.Logger

	once    sync.Once
	initErr error
}

// New returns the machine's buses. It does no I/O: periph's host drivers
// are loaded on the first I²C, SPI or GPIO open, so an agent configured
// only with serial or simulated channels never probes the SoC.
func New(logger *slog.Logger) *Host {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Host{serial: newSerialPool(), logger: logger}
}

// Init loads periph's host drivers once (later calls return the first
// result). Drivers that fail to load (another SoC) are logged at debug
// level, not errors: a machine without SPI simply has no SPI port.
func (h *Host) Init() error {
	h.once.Do(func() {
		state, err := periphhost.Init()
		if err != nil {
			h.initErr = fmt.Errorf("periph host init: %w", err)
			return
		}
		for _, f := range state.Failed {
			h.logger.Debug("periph driver failed to load", "driver", f.D.String(), "err", f.Err)
		}
	})
	return h.initErr
}

// Env returns the Env for one channel, with its private state directory.
func (h *Host) Env(stateDir string, logger *slog.Logger) sensor.Env {
	if logger == nil {
		logger = h.logger
	}
	return sensor.Env{
		OpenI2C:    h.OpenI2C,
		OpenSPI:    h.OpenSPI,
		OpenSerial: h.OpenSerial,
		OpenGPIO:   h.OpenGPIO,
		StateDir:   stateDir,
		Logger:     logger,
		Now:        time.Now,
	}
}

// OpenI2C opens an I²C bus by periph name ("1", "/dev/i2c-1", "I2C1");
// empty opens the first.
func (h *Host) OpenI2C(name string) (i2c.BusCloser, error) {
	if err := h.Init(); err != nil {
		return nil, err
	}
	b, err := i2creg.Open(name)
	if err != nil {
		return nil, fmt.Errorf("I2C bus %q: %w (known: %s)", name, err, i2cNames())
	}
	return b, nil
}

// OpenSPI opens an SPI port by periph name ("/dev/spidev0.0", "SPI0.0");
// empty opens the first.
func (h *Host) OpenSPI(name string) (spi.PortCloser, error) {
	if err := h.Init(); err != nil {
		return nil, err
	}
	p, err := spireg.Open(name)
	if err != nil {
		return nil, fmt.Errorf("SPI port %q: %w (known: %s)", name, err, spiNames())
	}
	return p, nil
}

// OpenGPIO finds a pin by name ("GPIO17", "17", "P1_11").
func (h *Host) OpenGPIO(name string) (gpio.PinIO, error) {
	if err := h.Init(); err != nil {
		return nil, err
	}
	p := gpioreg.ByName(name)
	if p == nil {
		return nil, fmt.Errorf("GPIO %q: no such pin (%d pins known)", name, len(gpioreg.All()))
	}
	return p, nil
}

// OpenSerial opens (or shares) a serial port at baud; see the package doc
// for sharing and the framing suffix.
func (h *Host) OpenSerial(name string, baud int) (sensor.SerialPort, error) {
	p, err := h.serial.open(name, baud)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// I2CBuses lists the I²C bus names periph found, for the probe.
func (h *Host) I2CBuses() []string {
	if h.Init() != nil {
		return nil
	}
	var out []string
	for _, r := range i2creg.All() {
		out = append(out, r.Name)
	}
	return out
}

func i2cNames() string {
	s := ""
	for _, r := range i2creg.All() {
		s += " " + r.Name
	}
	if s == "" {
		return "none"
	}
	return s[1:]
}

func spiNames() string {
	s := ""
	for _, r := range spireg.All() {
		s += " " + r.Name
	}
	if s == "" {
		return "none"
	}
	return s[1:]
}
