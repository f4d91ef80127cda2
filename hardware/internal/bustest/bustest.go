package bustest

import (
	"errors"
	"sync"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/spi"
)

// ErrNACK stands for the error a real bus returns when no device
// acknowledges (Linux i2c-dev reports ENXIO/EREMOTEIO).
var ErrNACK = errors.New("bustest: no acknowledge")

// I2C wraps a bus (normally an *i2ctest.Playback) and fails chosen
// transactions. A failed transaction does not reach the wrapped bus, so the
// playback only lists the transactions that succeed.
type I2C struct {
	i2c.BusCloser
	// Fail maps the index of a Tx call (0-based, counting failed calls) to
	// the error it returns.
	Fail map[int]error

	mu sync.Mutex
	n  int
}

// Tx implements i2c.Bus.
func (b *I2C) Tx(addr uint16, w, r []byte) error {
	b.mu.Lock()
	i := b.n
	b.n++
	b.mu.Unlock()
	if err, ok := b.Fail[i]; ok {
		return err
	}
	return b.BusCloser.Tx(addr, w, r)
}

// SPI wraps an spi.Conn and fails chosen transactions, like I2C.
type SPI struct {
	spi.Conn
	Fail map[int]error

	mu sync.Mutex
	n  int
}

// Tx implements conn.Conn.
func (c *SPI) Tx(w, r []byte) error {
	c.mu.Lock()
	i := c.n
	c.n++
	c.mu.Unlock()
	if err, ok := c.Fail[i]; ok {
		return err
	}
	return c.Conn.Tx(w, r)
}
