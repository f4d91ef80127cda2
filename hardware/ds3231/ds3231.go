package ds3231

import (
	"errors"
	"fmt"
	"io"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"

	"github.com/gridedge/gridedge/hardware/internal/regio"
)

// Register map (datasheet figure 1).
const (
	regSeconds byte = 0x00 // 0x00..0x06: seconds, minutes, hours, day, date, month/century, year
	regControl byte = 0x0E
	regStatus  byte = 0x0F
	regTempMSB byte = 0x11 // 0x12: fraction in bits 7..6
)

// Bits.
const (
	hour12     byte = 1 << 6 // hours register: 12-hour mode
	hourPM     byte = 1 << 5 // hours register in 12-hour mode: PM
	century    byte = 1 << 7 // month register
	statusOSF  byte = 1 << 7
	controlOSC byte = 1 << 7 // EOSC: 1 stops the oscillator on battery
)

// DefaultAddress is the DS3231's fixed address.
const DefaultAddress uint16 = 0x68

// TimeRegisters is the number of time registers, 0x00..0x06.
const TimeRegisters = 7

// ErrTimeInvalid: the oscillator stopped since the time was last set
// (OSF set), so the time it holds is not the time.
var ErrTimeInvalid = errors.New("ds3231: oscillator stopped since last set (OSF): time invalid")

// ErrImplausible: the time registers do not hold a valid BCD date and time.
var ErrImplausible = errors.New("ds3231: time registers hold no valid BCD date")

// Opts configures the chip; the zero value is the usual wiring.
type Opts struct {
	// Address; 0 means 0x68.
	Address uint16
}

// Dev is one DS3231.
type Dev struct {
	reg    regio.Dev
	closer io.Closer
}

// New returns the chip on bus. It reads the control register to make sure a
// device answers and that the oscillator runs on battery (EOSC clear),
// clearing EOSC if another program set it.
func New(bus i2c.Bus, opts *Opts) (*Dev, error) {
	addr := DefaultAddress
	if opts != nil && opts.Address != 0 {
		addr = opts.Address
	}
	d := &Dev{reg: regio.Dev{I2C: i2c.Dev{Bus: bus, Addr: addr}, Chip: "ds3231"}}
	var ctl [1]byte
	if err := d.reg.Read(regControl, "control", ctl[:]); err != nil {
		return nil, err
	}
	if ctl[0]&controlOSC != 0 {
		if err := d.reg.Write(regControl, "control", ctl[0]&^controlOSC); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Open opens the I²C bus named bus with open (normally sensor.Env.OpenI2C)
// and returns the chip on it; Close then closes the bus.
func Open(open func(bus string) (i2c.BusCloser, error), bus string, opts *Opts) (*Dev, error) {
	if open == nil {
		return nil, errors.New("ds3231: this platform has no I2C bus")
	}
	b, err := open(bus)
	if err != nil {
		return nil, fmt.Errorf("ds3231: open I2C bus %q: %w", bus, err)
	}
	d, err := New(b, opts)
	if err != nil {
		return nil, errors.Join(err, b.Close())
	}
	d.closer = b
	return d, nil
}

// String is "ds3231@bus:0x68".
func (d *Dev) String() string { return d.reg.String() }

// Close closes the bus if Open opened it.
func (d *Dev) Close() error {
	if d.closer == nil {
		return nil
	}
	return d.closer.Close()
}

// Halt implements conn.Resource; the clock keeps running.
func (d *Dev) Halt() error { return nil }

// Time returns the chip's time (UTC). It returns ErrTimeInvalid when OSF is
// set, and ErrImplausible when the registers do not hold a valid date.
func (d *Dev) Time() (time.Time, error) {
	var status [1]byte
	if err := d.reg.Read(regStatus, "status", status[:]); err != nil {
		return time.Time{}, err
	}
	if status[0]&statusOSF != 0 {
		return time.Time{}, fmt.Errorf("%s: %w", d, ErrTimeInvalid)
	}
	// One burst read: the chip latches all time registers at the START, so
	// the seconds cannot roll over between reading seconds and minutes.
	var regs [TimeRegisters]byte
	if err := d.reg.Read(regSeconds, "time", regs[:]); err != nil {
		return time.Time{}, err
	}
	t, err := DecodeTime(regs[:])
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", d, err)
	}
	return t, nil
}

// SetTime writes t (converted to UTC, whole seconds) in 24-hour mode and
// clears OSF, after which Time trusts the chip again. Writing the seconds
// register restarts the chip's one-second countdown, so the fraction of t is
// lost: call it just after a whole second of t for sub-second agreement.
func (d *Dev) SetTime(t time.Time) error {
	regs, err := EncodeTime(t)
	if err != nil {
		return fmt.Errorf("%s: %w", d, err)
	}
	if err := d.reg.Write(regSeconds, "time", regs[:]...); err != nil {
		return err
	}
	var status [1]byte
	if err := d.reg.Read(regStatus, "status", status[:]); err != nil {
		return err
	}
	if status[0]&statusOSF != 0 {
		// Writing back the alarm flags as read leaves them unchanged (they
		// can only be cleared), so only OSF changes.
		if err := d.reg.Write(regStatus, "status", status[0]&^statusOSF); err != nil {
			return err
		}
	}
	return nil
}

// Temperature returns the die temperature the chip measures every 64 s
// for its crystal compensation, with 0.25 °C resolution.
func (d *Dev) Temperature() (physic.Temperature, error) {
	var b [2]byte
	if err := d.reg.Read(regTempMSB, "temperature", b[:]); err != nil {
		return 0, err
	}
	// 10-bit two's complement: MSB is the integer part, bits 7..6 of the
	// LSB the quarter degrees. Arithmetic shift keeps the sign.
	quarters := int16(uint16(b[0])<<8|uint16(b[1])) >> 6
	return physic.ZeroCelsius + physic.Temperature(quarters)*250*physic.MilliKelvin, nil
}

// Sense fills e.Temperature, as periph's environmental sensors do.
func (d *Dev) Sense(e *physic.Env) error {
	t, err := d.Temperature()
	if err != nil {
		return err
	}
	e.Temperature = t
	return nil
}

func fromBCD(b, mask byte) (int, bool) {
	b &= mask
	hi, lo := b>>4, b&0x0F
	return int(hi)*10 + int(lo), hi <= 9 && lo <= 9
}

func toBCD(v int) byte { return byte(v/10)<<4 | byte(v%10) }

// DecodeTime converts the 7 time registers to a UTC time. It accepts 12- and
// 24-hour modes and rejects anything that is not a valid BCD date and time,
// which also makes it a safe identity check for a probe.
func DecodeTime(regs []byte) (time.Time, error) {
	if len(regs) != TimeRegisters {
		return time.Time{}, fmt.Errorf("%w: %d registers, want %d", ErrImplausible, len(regs), TimeRegisters)
	}
	bad := func(what string, b byte) (time.Time, error) {
		return time.Time{}, fmt.Errorf("%w: %s register 0x%02x", ErrImplausible, what, b)
	}
	sec, ok := fromBCD(regs[0], 0x7F)
	if !ok || sec > 59 || regs[0]&0x80 != 0 {
		return bad("seconds", regs[0])
	}
	minute, ok := fromBCD(regs[1], 0x7F)
	if !ok || minute > 59 || regs[1]&0x80 != 0 {
		return bad("minutes", regs[1])
	}
	var hour int
	if h := regs[2]; h&hour12 != 0 {
		hour, ok = fromBCD(h, 0x1F)
		if !ok || hour < 1 || hour > 12 {
			return bad("hours", h)
		}
		hour %= 12 // 12 AM is 0, 12 PM is 12
		if h&hourPM != 0 {
			hour += 12
		}
	} else {
		hour, ok = fromBCD(h, 0x3F)
		if !ok || hour > 23 || h&0x80 != 0 {
			return bad("hours", h)
		}
	}
	if wd := regs[3]; wd < 1 || wd > 7 {
		return bad("day", wd)
	}
	day, ok := fromBCD(regs[4], 0x3F)
	if !ok || day < 1 || day > 31 || regs[4]&0xC0 != 0 {
		return bad("date", regs[4])
	}
	month, ok := fromBCD(regs[5], 0x1F)
	if !ok || month < 1 || month > 12 || regs[5]&0x60 != 0 {
		return bad("month", regs[5])
	}
	year, ok := fromBCD(regs[6], 0xFF)
	if !ok {
		return bad("year", regs[6])
	}
	year += 2000
	if regs[5]&century != 0 {
		year += 100
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	if t.Day() != day {
		return bad("date", regs[4]) // 31 February and the like
	}
	return t, nil
}

// EncodeTime converts t (in UTC, truncated to the second) to the 7 time
// registers in 24-hour mode. Years outside 2000..2199 do not fit.
func EncodeTime(t time.Time) ([TimeRegisters]byte, error) {
	t = t.UTC()
	var regs [TimeRegisters]byte
	year := t.Year() - 2000
	if year < 0 || year > 199 {
		return regs, fmt.Errorf("ds3231: year %d outside 2000..2199", t.Year())
	}
	regs[0] = toBCD(t.Second())
	regs[1] = toBCD(t.Minute())
	regs[2] = toBCD(t.Hour())
	regs[3] = byte(t.Weekday()) + 1 // 1 = Sunday; the chip only needs 1..7 in sequence
	regs[4] = toBCD(t.Day())
	regs[5] = toBCD(int(t.Month()))
	if year >= 100 {
		regs[5] |= century
		year -= 100
	}
	regs[6] = toBCD(year)
	return regs, nil
}
