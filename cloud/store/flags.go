package store

import "github.com/gridedge/gridedge/shared/wire"

// Flags mark a stored reading that is kept but was not trusted: it is
// served by Readings with its flags, counted, and kept out of the window
// pipelines, so it cannot move a watermark or distort an aggregate.
type Flags uint8

const (
	// FlagFuture: the reading was dated later than its batch's receive
	// time plus the configured max_future.
	FlagFuture Flags = 1 << iota
	// FlagImplausible: the value was outside the configured plausibility
	// range of its quantity.
	FlagImplausible
)

// Names lists the flags' names ("future", "implausible"), nil for none.
func (f Flags) Names() []string {
	var out []string
	if f&FlagFuture != 0 {
		out = append(out, "future")
	}
	if f&FlagImplausible != 0 {
		out = append(out, "implausible")
	}
	return out
}

// Raw blocks keep a reading's flags above the 8 bits of its time quality in
// the block's quality column (run-length coded, so unflagged series pay
// nothing).
const flagShift = 8

// PackQuality is the block quality column's value of a reading.
func PackQuality(q wire.TimeQuality, f Flags) int32 { return int32(q)&0xff | int32(f)<<flagShift }

// UnpackQuality splits a block quality column value.
func UnpackQuality(v int32) (wire.TimeQuality, Flags) {
	return wire.TimeQuality(v & 0xff), Flags(uint32(v) >> flagShift)
}
