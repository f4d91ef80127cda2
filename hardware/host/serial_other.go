//go:build !linux

package host

import (
	"errors"
	"time"
)

// Port is unavailable off Linux.
type Port struct{}

// Open reports that serial ports need Linux.
func Open(path string, baud int, f Framing) (*Port, error) {
	return nil, errors.New("serial " + path + ": serial ports are supported on Linux only")
}

func (*Port) Read([]byte) (int, error)           { return 0, errors.ErrUnsupported }
func (*Port) Write([]byte) (int, error)          { return 0, errors.ErrUnsupported }
func (*Port) SetReadTimeout(time.Duration) error { return errors.ErrUnsupported }
func (*Port) Flush() error                       { return errors.ErrUnsupported }
func (*Port) Close() error                       { return nil }
