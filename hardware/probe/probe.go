package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"periph.io/x/conn/v3/i2c"

	"github.com/gridedge/gridedge/hardware/ds3231"
	"github.com/gridedge/gridedge/hardware/ina226"
	"github.com/gridedge/gridedge/hardware/modbus"
	"github.com/gridedge/gridedge/hardware/sensor"
)

// Options say where to look.
type Options struct {
	// I2CBuses to scan by periph name ("1"); empty scans none.
	I2CBuses []string
	// SerialPorts to probe ("/dev/ttyUSB0", "/dev/ttyS0:8E1"); empty probes none.
	SerialPorts []string
	// MaxModbusAddress is N in the 1..N address sweep (default 4: each
	// silent address costs one ModbusTimeout).
	MaxModbusAddress int
	// ModbusTimeout per request (default 300 ms; these meters answer
	// within ~100 ms).
	ModbusTimeout time.Duration
}

// I²C addresses a 7-bit scan covers (0x00-0x02 and 0x78-0x7F are reserved).
const (
	firstAddr = 0x03
	lastAddr  = 0x77
)

// ErrNothingFound is returned by Probe when it scanned everything it was
// given without an error and found no device (or was given nothing to scan).
var ErrNothingFound = errors.New("probe: no device found")

// Probe scans what opts names and writes one line per device found, a
// summary per bus, and a last line saying what was scanned and how many
// devices answered. It returns an error when a bus could not be opened or
// ctx ended, after reporting everything it could, and ErrNothingFound when
// nothing answered anywhere.
func Probe(ctx context.Context, env sensor.Env, opts Options, w io.Writer) error {
	if opts.MaxModbusAddress <= 0 {
		opts.MaxModbusAddress = 4
	}
	if opts.ModbusTimeout <= 0 {
		opts.ModbusTimeout = 300 * time.Millisecond
	}
	var errs []error
	found := 0
	for _, name := range opts.I2CBuses {
		n, err := probeI2C(ctx, env, name, w)
		found += n
		if err != nil {
			fmt.Fprintf(w, "i2c %s: %v\n", name, err)
			errs = append(errs, err)
		}
	}
	for _, port := range opts.SerialPorts {
		n, err := probeSerial(ctx, env, port, opts, w)
		found += n
		if err != nil {
			fmt.Fprintf(w, "serial %s: %v\n", port, err)
			errs = append(errs, err)
		}
	}
	fmt.Fprintf(w, "probe: scanned %s and %s: %d device(s) found\n",
		listed("I²C bus", "I²C buses", opts.I2CBuses), listed("serial port", "serial ports", opts.SerialPorts), found)
	if len(errs) == 0 && found == 0 {
		return ErrNothingFound
	}
	return errors.Join(errs...)
}

// listed is "no I²C buses", "I²C bus 1" or "I²C buses 1, 3".
func listed(one, many string, names []string) string {
	switch len(names) {
	case 0:
		return "no " + many
	case 1:
		return one + " " + names[0]
	}
	return many + " " + strings.Join(names, ", ")
}

// probeI2C returns how many addresses answered on the bus.
func probeI2C(ctx context.Context, env sensor.Env, name string, w io.Writer) (int, error) {
	if env.OpenI2C == nil {
		return 0, errors.New("this platform has no I2C")
	}
	bus, err := env.OpenI2C(name)
	if err != nil {
		return 0, err
	}
	defer bus.Close()
	found := 0
	for addr := uint16(firstAddr); addr <= lastAddr; addr++ {
		if err := ctx.Err(); err != nil {
			return found, err
		}
		var b [1]byte
		if bus.Tx(addr, nil, b[:]) != nil {
			continue // no acknowledge: nothing there
		}
		found++
		chip, sample := identifyI2C(&i2c.Dev{Bus: bus, Addr: addr})
		fmt.Fprintf(w, "i2c %s 0x%02x  %s", name, addr, chip)
		if sample != "" {
			fmt.Fprintf(w, "  %s", sample)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "i2c %s: %d device(s) in 0x%02x-0x%02x\n", name, found, firstAddr, lastAddr)
	return found, nil
}

func read16(d *i2c.Dev, reg byte) (uint16, error) {
	var b [2]byte
	if err := d.Tx([]byte{reg}, b[:]); err != nil {
		return 0, err
	}
	return uint16(b[0])<<8 | uint16(b[1]), nil
}

// identifyI2C names the device at d with read-only register accesses.
func identifyI2C(d *i2c.Dev) (chip, sample string) {
	switch {
	case d.Addr >= 0x40 && d.Addr <= 0x4F:
		mfr, err1 := read16(d, ina226.RegManufacturer)
		die, err2 := read16(d, ina226.RegDieID)
		if err1 == nil && err2 == nil && mfr == ina226.ManufacturerTI && die == ina226.DieID {
			bus, err := read16(d, 0x02)
			shunt, err2 := read16(d, 0x01)
			if err != nil || err2 != nil {
				return "INA226 (id 0x5449/0x2260)", "reading failed"
			}
			// Bus LSB 1.25 mV, shunt LSB 2.5 µV (datasheet SBOS547A).
			return "INA226 (id 0x5449/0x2260)", fmt.Sprintf("bus %.3f V, shunt %.4f mV", float64(bus)*0.00125, float64(int16(shunt))*0.0025)
		}
		cfg, err := read16(d, 0x00)
		// INA219 configuration: bit 14 is reserved 0; MODE (bits 2..0)
		// and the power-on value 0x399F fit. An INA226 would have bits
		// 14..12 = 100 and answered the ID check above.
		if err == nil && cfg&0x4000 == 0 {
			bus, err := read16(d, 0x02)
			shunt, err2 := read16(d, 0x01)
			if err != nil || err2 != nil {
				return "INA219 (likely; no ID register)", "reading failed"
			}
			// Bus value in bits 15..3, LSB 4 mV; shunt LSB 10 µV (SBOS448G).
			return "INA219 (likely; no ID register)", fmt.Sprintf("bus %.3f V, shunt %.2f mV (config 0x%04x)", float64(bus>>3)*0.004, float64(int16(shunt))*0.01, cfg)
		}
		return "unknown device in the INA2xx range", ""
	case d.Addr == ds3231.DefaultAddress:
		var regs [ds3231.TimeRegisters]byte
		if err := d.Tx([]byte{0x00}, regs[:]); err != nil {
			return "unknown device at the RTC address", ""
		}
		t, err := ds3231.DecodeTime(regs[:])
		if err != nil {
			return "unknown device at the RTC address (no BCD time)", ""
		}
		var status [1]byte
		var temp [2]byte
		sample = "time " + t.Format(time.RFC3339)
		if d.Tx([]byte{0x0F}, status[:]) == nil && status[0]&0x80 != 0 {
			sample += " (OSF set: time invalid until set)"
		}
		if d.Tx([]byte{0x11}, temp[:]) == nil {
			sample += fmt.Sprintf(", %.2f °C", float64(int16(uint16(temp[0])<<8|uint16(temp[1]))>>6)*0.25)
		}
		return "DS3231 RTC (likely)", sample
	}
	return "unknown device", ""
}

type serialTry struct {
	baud int
	kind string // "pzem" (fixed point) or "sdm" (float)
}

// probeSerial returns how many (baud, address) pairs answered on the port.
func probeSerial(ctx context.Context, env sensor.Env, port string, opts Options, w io.Writer) (int, error) {
	if env.OpenSerial == nil {
		return 0, errors.New("this platform has no serial ports")
	}
	found := 0
	seen := map[[2]int]bool{} // {baud, address} that answered in an earlier pass
	for _, try := range []serialTry{{9600, "pzem"}, {9600, "sdm"}, {2400, "sdm"}} {
		p, err := env.OpenSerial(port, try.baud)
		if err != nil {
			return found, err
		}
		c := modbus.NewClient(p, modbus.WithBaud(try.baud), modbus.WithResponseTimeout(opts.ModbusTimeout), modbus.WithAttempts(1),
			modbus.WithWildcardAddress(0xF8)) // PZEM general address: answered from the meter's own address
		addrs := make([]byte, 0, opts.MaxModbusAddress+1)
		for a := 1; a <= opts.MaxModbusAddress && a <= 247; a++ {
			addrs = append(addrs, byte(a))
		}
		if try.kind == "pzem" {
			addrs = append(addrs, 0xF8) // PZEM general address
		}
		for _, addr := range addrs {
			if err := ctx.Err(); err != nil {
				p.Close()
				return found, err
			}
			if seen[[2]int{try.baud, int(addr)}] {
				continue
			}
			if line := probeModbus(ctx, c, addr, try.kind); line != "" {
				seen[[2]int{try.baud, int(addr)}] = true
				found++
				fmt.Fprintf(w, "serial %s %d baud addr %d  %s\n", port, try.baud, addr, line)
			}
		}
		if err := p.Close(); err != nil {
			return found, err
		}
	}
	fmt.Fprintf(w, "serial %s: %d meter answer(s)\n", port, found)
	return found, nil
}

// probeModbus asks one address and describes what answered, or "".
func probeModbus(ctx context.Context, c *modbus.Client, addr byte, kind string) string {
	switch kind {
	case "pzem":
		r, err := c.ReadInputRegisters(ctx, addr, 0x0000, 10)
		if err != nil {
			return refused(err)
		}
		v := float64(r[0]) / 10
		pf := float64(r[8]) / 100
		// Mains voltage in 0.1 V and a power factor ≤ 1: the PZEM layout.
		if v < 80 || v > 300 || pf > 1 {
			return ""
		}
		return fmt.Sprintf("PZEM-004T v3  %.1f V %.3f A %.1f W %d Wh %.1f Hz PF %.2f",
			v, float64(uint32(r[2])<<16|uint32(r[1]))/1000, float64(uint32(r[4])<<16|uint32(r[3]))/10,
			uint32(r[6])<<16|uint32(r[5]), float64(r[7])/10, pf)
	default:
		r, err := c.ReadInputRegisters(ctx, addr, 0x0000, 2)
		if err != nil {
			return refused(err)
		}
		v := float64(math.Float32frombits(uint32(r[0])<<16 | uint32(r[1])))
		if math.IsNaN(v) || v < 80 || v > 300 {
			return ""
		}
		return fmt.Sprintf("Eastron SDM (float registers; SDM120 or SDM630)  phase 1 %.1f V", v)
	}
}

// refused describes a slave that answered with an exception: something is
// at that address even if it is not a meter this product knows.
func refused(err error) string {
	var exc *modbus.ExceptionError
	if errors.As(err, &exc) {
		return fmt.Sprintf("Modbus device (not identified: exception 0x%02x)", exc.Code)
	}
	return ""
}
