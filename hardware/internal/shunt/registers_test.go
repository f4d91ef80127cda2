package shunt

import (
	"errors"
	"testing"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/gridedge/gridedge/hardware/internal/bustest"
	"github.com/gridedge/gridedge/hardware/internal/regio"
)

var errReset = errors.New("chip: calibration lost")

const addr = 0x40

func write(reg byte, v uint16) i2ctest.IO {
	return i2ctest.IO{Addr: addr, W: []byte{reg, byte(v >> 8), byte(v)}}
}

func read(reg byte, v uint16) i2ctest.IO {
	return i2ctest.IO{Addr: addr, W: []byte{reg}, R: []byte{byte(v >> 8), byte(v)}}
}

func registers(bus i2c.Bus) *Registers {
	return &Registers{Dev: &regio.Dev{I2C: i2c.Dev{Bus: bus, Addr: addr}, Chip: "chip", Attempts: 1},
		Config: 0x399f, Calibration: 0x1000, ErrReset: errReset}
}

func TestVerifyKeepsACalibratedChip(t *testing.T) {
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{read(RegCalibration, 0x1000)}, DontPanic: true}
	if err := registers(bus).Verify(); err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil { // every op played, nothing written
		t.Fatal(err)
	}
}

func TestVerifyReprogramsAResetChip(t *testing.T) {
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{
		read(RegCalibration, 0x0000), // power-on value
		write(RegConfig, 0x399f), write(RegCalibration, 0x1000),
		read(RegCalibration, 0x1000),
	}, DontPanic: true}
	r := registers(bus)
	err := r.Verify()
	if !errors.Is(err, errReset) || err.Error() != "chip@playback:0x40: chip: calibration lost (read 0x0000, want 0x1000)" {
		t.Fatalf("err = %v, want the reset named", err)
	}
	if err := r.Verify(); err != nil {
		t.Fatalf("after re-programming: %v", err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyReportsAFailedRepair(t *testing.T) {
	play := &i2ctest.Playback{Ops: []i2ctest.IO{read(RegCalibration, 0x0000)}, DontPanic: true}
	bus := &bustest.I2C{BusCloser: play, Fail: map[int]error{1: bustest.ErrNACK}}
	err := registers(bus).Verify()
	if !errors.Is(err, errReset) || !errors.Is(err, bustest.ErrNACK) {
		t.Fatalf("err = %v, want both the reset and the bus error", err)
	}
}

func TestVerifyReturnsAReadError(t *testing.T) {
	bus := &bustest.I2C{BusCloser: &i2ctest.Playback{DontPanic: true}, Fail: map[int]error{0: bustest.ErrNACK}}
	if err := registers(bus).Verify(); !errors.Is(err, bustest.ErrNACK) || errors.Is(err, errReset) {
		t.Fatalf("err = %v, want the bus error only", err)
	}
}
