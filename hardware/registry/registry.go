package registry

import (
	"github.com/gridedge/gridedge/hardware/ade7953"
	"github.com/gridedge/gridedge/hardware/ds3231"
	"github.com/gridedge/gridedge/hardware/ina219"
	"github.com/gridedge/gridedge/hardware/ina226"
	"github.com/gridedge/gridedge/hardware/pulse"
	"github.com/gridedge/gridedge/hardware/pzem004t"
	"github.com/gridedge/gridedge/hardware/sdm"
	"github.com/gridedge/gridedge/hardware/sensor"
)

// Register adds every hardware driver to r: ade7953, ina219, ina226, pulse,
// pzem004t, sdm120 and sdm630.
func Register(r *sensor.Registry) {
	r.Register(ina219.Driver())
	r.Register(ina226.Driver())
	r.Register(ade7953.Driver())
	r.Register(pzem004t.Driver())
	for _, d := range sdm.Drivers() {
		r.Register(d)
	}
	r.Register(pulse.Driver())
}

// OpenRTC opens the DS3231 at its fixed address 0x68 on the named I²C bus
// (empty: the first bus). Close the returned Dev to release the bus.
func OpenRTC(env sensor.Env, bus string) (*ds3231.Dev, error) {
	return ds3231.Open(env.OpenI2C, bus, nil)
}
