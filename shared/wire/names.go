package wire

import (
	"fmt"
	"slices"
	"strings"
)

// quantityNames are the names used in configuration files, the API and CSV.
var quantityNames = map[Quantity]string{
	Quantity_QUANTITY_ACTIVE_POWER:   "active_power",
	Quantity_QUANTITY_ENERGY:         "energy",
	Quantity_QUANTITY_VOLTAGE:        "voltage",
	Quantity_QUANTITY_CURRENT:        "current",
	Quantity_QUANTITY_POWER_FACTOR:   "power_factor",
	Quantity_QUANTITY_FREQUENCY:      "frequency",
	Quantity_QUANTITY_REACTIVE_POWER: "reactive_power",
	Quantity_QUANTITY_TEMPERATURE:    "temperature",
	Quantity_QUANTITY_GENERIC:        "generic",
	Quantity_QUANTITY_APPARENT_POWER: "apparent_power",
	Quantity_QUANTITY_STATE:          "state",
}

var quantityUnits = map[Quantity]string{
	Quantity_QUANTITY_ACTIVE_POWER:   "W",
	Quantity_QUANTITY_ENERGY:         "Wh",
	Quantity_QUANTITY_VOLTAGE:        "V",
	Quantity_QUANTITY_CURRENT:        "A",
	Quantity_QUANTITY_POWER_FACTOR:   "",
	Quantity_QUANTITY_FREQUENCY:      "Hz",
	Quantity_QUANTITY_REACTIVE_POWER: "var",
	Quantity_QUANTITY_TEMPERATURE:    "°C",
	Quantity_QUANTITY_GENERIC:        "",
	Quantity_QUANTITY_APPARENT_POWER: "VA",
	Quantity_QUANTITY_STATE:          "",
}

// Name is the short lower-case name of q used in configuration and the API
// ("active_power", "energy", ...).
func (q Quantity) Name() string {
	if n, ok := quantityNames[q]; ok {
		return n
	}
	return fmt.Sprintf("quantity(%d)", int32(q))
}

// Unit is the fixed unit of q ("W", "Wh", ...); empty for dimensionless.
func (q Quantity) Unit() string { return quantityUnits[q] }

// ParseQuantity maps a configuration name to a Quantity.
func ParseQuantity(name string) (Quantity, error) {
	for q, n := range quantityNames {
		if n == name {
			return q, nil
		}
	}
	return 0, fmt.Errorf("unknown quantity %q (one of %s)", name, strings.Join(QuantityNames(), ", "))
}

// QuantityNames lists every configuration name, sorted.
func QuantityNames() []string {
	out := make([]string, 0, len(quantityNames))
	for _, n := range quantityNames {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

var qualityNames = map[TimeQuality]string{
	TimeQuality_TIME_QUALITY_SYNCED:    "synced",
	TimeQuality_TIME_QUALITY_RTC:       "rtc",
	TimeQuality_TIME_QUALITY_CORRECTED: "corrected",
	TimeQuality_TIME_QUALITY_ESTIMATED: "estimated",
}

// Name is "synced", "rtc", "corrected" or "estimated".
func (t TimeQuality) Name() string {
	if n, ok := qualityNames[t]; ok {
		return n
	}
	return "unknown"
}

// Worse reports whether t is a lower quality than u (synced is best,
// estimated is worst; unspecified ranks below all).
func (t TimeQuality) Worse(u TimeQuality) bool { return qualityRank(t) < qualityRank(u) }

func qualityRank(t TimeQuality) int {
	switch t {
	case TimeQuality_TIME_QUALITY_SYNCED:
		return 4
	case TimeQuality_TIME_QUALITY_CORRECTED:
		return 3
	case TimeQuality_TIME_QUALITY_RTC:
		return 2
	case TimeQuality_TIME_QUALITY_ESTIMATED:
		return 1
	}
	return 0
}
