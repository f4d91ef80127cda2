package main

import (
	"fmt"
	"log/slog"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/host/v3"

	"github.com/gridedge/gridedge/edge/sensor"
)

// hostEnv opens the gateway's real buses through periph.io. The host
// drivers are loaded on first use, so a configuration without hardware
// channels never touches /dev.
func hostEnv(log *slog.Logger) sensor.Env {
	var once sync.Once
	var initErr error
	initHost := func() error {
		once.Do(func() {
			if _, err := host.Init(); err != nil {
				initErr = fmt.Errorf("periph host init: %w", err)
				log.Error("hardware drivers unavailable", "err", initErr)
			}
		})
		return initErr
	}
	return sensor.Env{
		OpenI2C: func(bus string) (i2c.BusCloser, error) {
			if err := initHost(); err != nil {
				return nil, err
			}
			return i2creg.Open(bus)
		},
		OpenSPI: func(port string) (spi.PortCloser, error) {
			if err := initHost(); err != nil {
				return nil, err
			}
			return spireg.Open(port)
		},
		OpenGPIO: func(pin string) (gpio.PinIO, error) {
			if err := initHost(); err != nil {
				return nil, err
			}
			p := gpioreg.ByName(pin)
			if p == nil {
				return nil, fmt.Errorf("gpio pin %q not found", pin)
			}
			return p, nil
		},
	}
}
