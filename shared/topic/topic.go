package topic

import (
	"fmt"
	"strings"

	"github.com/gridedge/gridedge/shared/wire"
)

// Prefix is the first two levels of every gridedge topic.
const Prefix = "gridedge/v1"

// Kind is the last topic level.
type Kind string

// The topic kinds.
const (
	Data   Kind = "data"
	Ack    Kind = "ack"
	Status Kind = "status"
)

// For returns the topic of kind k for a device at a site.
func For(site, device string, k Kind) string {
	return Prefix + "/" + site + "/" + device + "/" + string(k)
}

// Filter is the subscription filter matching kind k of every device.
func Filter(k Kind) string { return Prefix + "/+/+/" + string(k) }

// Shared is the shared-subscription filter for kind k in group.
func Shared(group string, k Kind) string { return "$share/" + group + "/" + Filter(k) }

// Parse splits a concrete topic into site, device and kind. It rejects
// topics outside the scheme and ids that are not valid device ids.
func Parse(t string) (site, device string, k Kind, err error) {
	rest, ok := strings.CutPrefix(t, Prefix+"/")
	if !ok {
		return "", "", "", fmt.Errorf("topic %q: not under %s/", t, Prefix)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return "", "", "", fmt.Errorf("topic %q: want %s/<site>/<device>/<kind>", t, Prefix)
	}
	site, device, k = parts[0], parts[1], Kind(parts[2])
	if err := ValidateSite(site); err != nil {
		return "", "", "", fmt.Errorf("topic %q: %w", t, err)
	}
	if err := wire.ValidateDeviceID(device); err != nil {
		return "", "", "", fmt.Errorf("topic %q: device %w", t, err)
	}
	switch k {
	case Data, Ack, Status:
	default:
		return "", "", "", fmt.Errorf("topic %q: unknown kind %q", t, k)
	}
	return site, device, k, nil
}

// ValidateSite applies the device-id rules to a site name.
func ValidateSite(site string) error {
	if err := wire.ValidateDeviceID(site); err != nil {
		return fmt.Errorf("site %w", err)
	}
	return nil
}
