package fleet

import (
	"time"

	"github.com/gridedge/gridedge/cloud/store"
)

// DefaultOfflineAfter is how long without contact makes an online device
// offline unless configured otherwise (device_offline_after).
const DefaultOfflineAfter = 5 * time.Minute

// FromStore is the Device of a stored device record and latest status
// (either may be nil): its last contact is the later of its last batch and
// its last status.
func FromStore(id string, info *store.DeviceInfo, s *store.Status) Device {
	d := Device{ID: id}
	if info != nil {
		d.Site, d.LastContact = info.Site, info.LastSeen
	}
	if s != nil {
		d.HasStatus, d.Online, d.ClockQuality = true, s.Online, s.ClockQuality
		d.UnsyncedSince, d.Buffered = s.UnsyncedSince, s.BufferedReadings
		if d.Site == "" {
			d.Site = s.Site
		}
		if s.Received.After(d.LastContact) {
			d.LastContact = s.Received
		}
	}
	return d
}

// Online is gridedge's one rule for a device being online, used by the
// fleet gauges and the dashboard at /: its last status (if it sent one)
// said online, and it was heard from (a batch or a status) within
// offlineAfter of now. A device that never sent a status is online while
// its batches keep coming; one never heard from is offline.
func Online(d Device, now time.Time, offlineAfter time.Duration) bool {
	if d.HasStatus && !d.Online {
		return false
	}
	return !d.LastContact.IsZero() && now.Sub(d.LastContact) <= offlineAfter
}
