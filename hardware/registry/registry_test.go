package registry

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/gridedge/gridedge/hardware/sensor"
)

func TestRegister(t *testing.T) {
	r := sensor.NewRegistry()
	Register(r)
	want := []string{"ade7953", "ina219", "ina226", "pulse", "pzem004t", "sdm120", "sdm630"}
	if got := r.Names(); !slices.Equal(got, want) {
		t.Fatalf("Names = %v, want %v", got, want)
	}
	for _, d := range r.Drivers() {
		if d.Summary == "" || d.New == nil || d.Check == nil {
			t.Errorf("%s: missing summary, factory or checker", d.Name)
		}
		// Every driver rejects a misspelt option before touching hardware.
		_, err := r.New(sensor.Config{Channel: "c", Driver: d.Name, Options: map[string]any{"no_such_option": 1}}, sensor.Env{})
		if err == nil || !strings.Contains(err.Error(), "no_such_option") {
			t.Errorf("%s: unknown option: err = %v", d.Name, err)
		}
		// Check (gridedge-agent -check) says the same without an Env.
		if err := r.Check(sensor.Config{Channel: "c", Driver: d.Name, Options: map[string]any{"no_such_option": 1}}); err == nil ||
			!strings.HasPrefix(err.Error(), "options.no_such_option: unknown field") {
			t.Errorf("%s: Check of an unknown option: err = %v", d.Name, err)
		}
	}
}

func TestOpenRTC(t *testing.T) {
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{{Addr: 0x68, W: []byte{0x0E}, R: []byte{0x1C}}}, DontPanic: true}
	env := sensor.Env{OpenI2C: func(name string) (i2c.BusCloser, error) {
		if name != "1" {
			return nil, errors.New("no such bus")
		}
		return bus, nil
	}}
	rtc, err := OpenRTC(env, "1")
	if err != nil {
		t.Fatal(err)
	}
	if err := rtc.Close(); err != nil {
		t.Error(err)
	}
	if _, err := OpenRTC(env, "7"); err == nil {
		t.Error("missing bus opened")
	}
	if _, err := OpenRTC(sensor.Env{}, "1"); err == nil {
		t.Error("nil OpenI2C accepted")
	}
}
