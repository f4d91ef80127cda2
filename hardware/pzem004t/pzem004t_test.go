package pzem004t

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/physic"

	"github.com/gridedge/gridedge/hardware/modbus"
	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/hardware/serialtest"
	"github.com/gridedge/gridedge/shared/wire"
)

// Request "read all" to slave 1, as printed in the user manual:
// 01 04 0000 000A, CRC 0x0D70 sent low byte first.
var readAll = []byte{0x01, 0x04, 0x00, 0x00, 0x00, 0x0A, 0x70, 0x0D}

// Response for 230.1 V, 1.234 A, 283.9 W, 70000 Wh, 50.0 Hz, PF 1.00, no alarm:
//
//	voltage   2301  = 0x08FD
//	current   1234  = 0x0000_04D2 → low word 04D2, high word 0000
//	power     2839  = 0x0000_0B17 → 0B17 0000 (230.1 V × 1.234 A = 283.94 W)
//	energy    70000 = 0x0001_1170 → 1170 0001 (low word first)
//	frequency 500   = 0x01F4
//	PF        100   = 0x0064
//	alarm     0x0000
//	CRC over the 23 bytes = 0x4D7F → 7F 4D
var readAllResponse = []byte{0x01, 0x04, 0x14,
	0x08, 0xFD, 0x04, 0xD2, 0x00, 0x00, 0x0B, 0x17, 0x00, 0x00, 0x11, 0x70, 0x00, 0x01, 0x01, 0xF4, 0x00, 0x64, 0x00, 0x00,
	0x7F, 0x4D}

func client(p *serialtest.Playback) *modbus.Client {
	return modbus.NewClient(p, modbus.WithBaud(Baud), modbus.WithResponseTimeout(5*time.Second))
}

func TestSense(t *testing.T) {
	p := &serialtest.Playback{Ops: []serialtest.IO{{W: readAll, R: readAllResponse}}}
	d, err := New(client(p), &Opts{Address: 1})
	if err != nil {
		t.Fatal(err)
	}
	var m Measurement
	if err := d.Sense(context.Background(), &m); err != nil {
		t.Fatal(err)
	}
	want := Measurement{
		Voltage:     230100 * physic.MilliVolt,
		Current:     1234 * physic.MilliAmpere,
		Power:       283900 * physic.MilliWatt,
		EnergyWh:    70000,
		Frequency:   50 * physic.Hertz,
		PowerFactor: 1,
	}
	if m != want {
		t.Errorf("Sense = %+v, want %+v", m, want)
	}
	if err := p.Done(); err != nil {
		t.Error(err)
	}
}

func TestGeneralAddress(t *testing.T) {
	// Sent to 0xF8, answered from the meter's own address 0x01.
	req, _ := modbus.Encode(modbus.Frame{Slave: 0xF8, Function: 0x04, Data: []byte{0x00, 0x00, 0x00, 0x0A}})
	p := &serialtest.Playback{Ops: []serialtest.IO{{W: req, R: readAllResponse}}}
	env := sensor.Env{OpenSerial: func(string, int) (sensor.SerialPort, error) { return p, nil }}
	s, err := NewSensor(sensor.Config{Driver: DriverName, Options: map[string]any{"port": "/dev/ttyS0", "attempts": 1}}, env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sense(context.Background()); err != nil {
		t.Fatalf("answer from 0x01 to the general address refused: %v", err)
	}
	if err := p.Done(); err != nil {
		t.Error(err)
	}
}

func TestAlarm(t *testing.T) {
	// Alarm register 0xFFFF; the CRC is recomputed by the (separately
	// verified) modbus layer.
	data := append([]byte(nil), readAllResponse[2:23]...)
	data[19], data[20] = 0xFF, 0xFF
	frame, err := modbus.Encode(modbus.Frame{Slave: 1, Function: 0x04, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	p := &serialtest.Playback{Ops: []serialtest.IO{{W: readAll, R: frame}}}
	d, _ := New(client(p), &Opts{Address: 1})
	var m Measurement
	if err := d.Sense(context.Background(), &m); err != nil || !m.Alarm {
		t.Errorf("alarm 0xFFFF: Alarm = %v, err = %v", m.Alarm, err)
	}
}

func TestErrors(t *testing.T) {
	badCRC := append([]byte(nil), readAllResponse...)
	badCRC[len(badCRC)-1] ^= 0x01
	for _, tc := range []struct {
		name string
		resp []byte
		want error
	}{
		{"bad CRC", badCRC, modbus.ErrCRC},
		{"short frame", readAllResponse[:10], modbus.ErrShortFrame},
		{"silent", nil, modbus.ErrTimeout},
		// 01 84 04: slave device failure, CRC 0xC342.
		{"exception", []byte{0x01, 0x84, 0x04, 0x42, 0xC3}, &modbus.ExceptionError{}},
	} {
		p := &serialtest.Playback{Ops: []serialtest.IO{{W: readAll, R: tc.resp}}}
		d, _ := New(modbus.NewClient(p, modbus.WithAttempts(1)), &Opts{Address: 1})
		var m Measurement
		err := d.Sense(context.Background(), &m)
		var exc *modbus.ExceptionError
		matched := errors.Is(err, tc.want) || (errors.As(tc.want, &exc) && errors.As(err, &exc))
		if !matched || !strings.Contains(err.Error(), "pzem004t@0x01") {
			t.Errorf("%s: err = %v, want %v naming the meter", tc.name, err, tc.want)
		}
		if m != (Measurement{}) {
			t.Errorf("%s: measurement filled in on error: %+v", tc.name, m)
		}
	}
}

func TestResetEnergyAndSetAddress(t *testing.T) {
	p := &serialtest.Playback{Ops: []serialtest.IO{
		// Reset: 01 42 + CRC 0x1180 → 80 11; the meter echoes it.
		{W: []byte{0x01, 0x42, 0x80, 0x11}, R: []byte{0x01, 0x42, 0x80, 0x11}},
		// Set address 5: write holding register 0x0002 = 0x0005, echoed.
		{W: []byte{0x01, 0x06, 0x00, 0x02, 0x00, 0x05, 0xE8, 0x09}, R: []byte{0x01, 0x06, 0x00, 0x02, 0x00, 0x05, 0xE8, 0x09}},
		// Refused reset at the new address: 05 42 (CRC 0xD182) answered by
		// 05 C2 04 (function 0x42 | 0x80, code 4), CRC 0x6231.
		{W: []byte{0x05, 0x42, 0x82, 0xD1}, R: []byte{0x05, 0xC2, 0x04, 0x31, 0x62}},
	}}
	d, _ := New(client(p), &Opts{Address: 1})
	ctx := context.Background()
	if err := d.ResetEnergy(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.SetAddress(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if d.String() != "pzem004t@0x05" {
		t.Errorf("after SetAddress: %s", d)
	}
	var exc *modbus.ExceptionError
	if err := d.ResetEnergy(ctx); !errors.As(err, &exc) || exc.Code != modbus.ExceptionSlaveDeviceFailure {
		t.Errorf("refused reset: err = %v", err)
	}
	if err := p.Done(); err != nil {
		t.Error(err)
	}
	if err := d.SetAddress(ctx, 0xF8); err == nil {
		t.Error("general address accepted as a slave address")
	}
}

func TestSensor(t *testing.T) {
	p := &serialtest.Playback{Ops: []serialtest.IO{{W: readAll, R: readAllResponse}}}
	env := sensor.Env{OpenSerial: func(port string, baud int) (sensor.SerialPort, error) {
		if port != "/dev/ttyS0" || baud != 9600 {
			t.Errorf("OpenSerial(%q, %d), want /dev/ttyS0 at 9600", port, baud)
		}
		return p, nil
	}}
	s, err := NewSensor(sensor.Config{Channel: "mains", Driver: DriverName, Options: map[string]any{"port": "/dev/ttyS0", "address": 1}}, env)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Sense(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[wire.Quantity]float64{
		wire.Quantity_QUANTITY_VOLTAGE:      230.1,
		wire.Quantity_QUANTITY_CURRENT:      1.234,
		wire.Quantity_QUANTITY_ACTIVE_POWER: 283.9,
		wire.Quantity_QUANTITY_ENERGY:       70000,
		wire.Quantity_QUANTITY_FREQUENCY:    50,
		wire.Quantity_QUANTITY_POWER_FACTOR: 1,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d values: %v", len(got), got)
	}
	for _, v := range got {
		if math.Abs(v.Value-want[v.Quantity]) > 1e-9 {
			t.Errorf("%s = %v, want %v", v.Quantity.Name(), v.Value, want[v.Quantity])
		}
	}
	if err := s.Close(); err != nil || !p.Closed() {
		t.Errorf("Close: %v, closed %v", err, p.Closed())
	}
	if _, err := NewSensor(sensor.Config{Driver: DriverName, Options: map[string]any{"port": "/dev/ttyS0", "adress": 1}}, env); err == nil {
		t.Error("misspelt option accepted")
	}
	if _, err := NewSensor(sensor.Config{Driver: DriverName}, env); err == nil {
		t.Error("missing port accepted")
	}
}
