package broker

import (
	"strings"

	"github.com/gridedge/gridedge/cloud/devices"
	"github.com/gridedge/gridedge/shared/topic"
	"github.com/gridedge/gridedge/shared/wire"
)

// mayPublish reports whether id may publish on the concrete topic t: a
// device its own data and status, a collector any device's ack.
func mayPublish(id devices.Identity, t string) bool {
	if id.IsDevice() {
		return t == topic.For(id.Site, id.Device, topic.Data) || t == topic.For(id.Site, id.Device, topic.Status)
	}
	_, _, kind, err := topic.Parse(t)
	return err == nil && kind == topic.Ack
}

// mayRead reports whether id may subscribe to filter f, or receive a
// message on the concrete topic f: a device only its own ack topic
// (exactly, no wildcard), a collector data and status of any device, plain
// or through a shared subscription, with + for the site or device.
func mayRead(id devices.Identity, f string) bool {
	if id.IsDevice() {
		return f == topic.For(id.Site, id.Device, topic.Ack)
	}
	if rest, ok := strings.CutPrefix(f, "$share/"); ok {
		group, filter, found := strings.Cut(rest, "/")
		if !found || group == "" || strings.ContainsAny(group, "+#") {
			return false
		}
		f = filter
	}
	levels := strings.Split(f, "/")
	if len(levels) != 5 || levels[0]+"/"+levels[1] != topic.Prefix {
		return false
	}
	for _, id := range levels[2:4] {
		if id != "+" && wire.ValidateDeviceID(id) != nil {
			return false
		}
	}
	return levels[4] == string(topic.Data) || levels[4] == string(topic.Status)
}
