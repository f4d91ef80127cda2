package shunt

import (
	"fmt"

	"github.com/gridedge/gridedge/hardware/internal/regio"
)

// Register addresses INA219 and INA226 share (datasheet table 2 of both).
const (
	RegConfig      byte = 0x00
	RegCalibration byte = 0x05
)

// Registers are the two registers a shunt monitor must hold for its current
// and power readings to mean anything: the configuration and the
// calibration. A reset or brown-out sets them back to power-on values that
// still convert, so a reading after one looks plausible but is scaled
// wrongly; Verify catches and repairs that before each reading.
type Registers struct {
	// Dev is the chip.
	Dev *regio.Dev
	// Config and Calibration are the values to program.
	Config, Calibration uint16
	// ErrReset is the driver's error for "calibration lost, re-programmed".
	ErrReset error
}

// Program writes the configuration, then the calibration register.
func (r *Registers) Program() error {
	if err := r.Dev.Write16(RegConfig, "configuration", r.Config); err != nil {
		return err
	}
	return r.Dev.Write16(RegCalibration, "calibration", r.Calibration)
}

// Verify reads the calibration register back. When it differs from what was
// programmed the chip has been reset: Verify programs both registers again
// and returns an error wrapping ErrReset, so the caller skips this reading
// and the next one is valid. A failed re-programming wraps both ErrReset and
// the bus error.
func (r *Registers) Verify() error {
	cal, err := r.Dev.Read16(RegCalibration, "calibration")
	if err != nil {
		return err
	}
	if cal == r.Calibration {
		return nil
	}
	if err := r.Program(); err != nil {
		return fmt.Errorf("%w: %w", r.ErrReset, err)
	}
	return fmt.Errorf("%s: %w (read 0x%04x, want 0x%04x)", r.Dev, r.ErrReset, cal, r.Calibration)
}
