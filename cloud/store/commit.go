package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

// DeviceInfo is what the store knows about a device that sent readings.
type DeviceInfo struct {
	ID             string    `json:"id"`
	Site           string    `json:"site"`
	FirstSeen      time.Time `json:"first_seen"`
	LastSeen       time.Time `json:"last_seen"`
	ReadingsStored uint64    `json:"readings_stored"`
	Duplicates     uint64    `json:"duplicates"`
	// Conflicts counts resent identities with other content; Flagged the
	// readings stored flagged (future, implausible) and kept out of windows.
	Conflicts uint64 `json:"conflicts,omitempty"`
	Flagged   uint64 `json:"flagged,omitempty"`
	// MaxEventNs is the newest reading time seen.
	MaxEventNs int64 `json:"max_event_ns"`
	// Channels lists the device's series, for retention and queries.
	Series []SeriesID `json:"series,omitempty"`
}

// SeriesID names a raw series of a device.
type SeriesID struct {
	Channel  string        `json:"channel"`
	Quantity wire.Quantity `json:"quantity"`
}

// Status is the latest status message received from a device.
type Status struct {
	Device           string    `json:"device"`
	Site             string    `json:"site"`
	Received         time.Time `json:"received"`
	Online           bool      `json:"online"`
	AgentVersion     string    `json:"agent_version,omitempty"`
	BootID           string    `json:"boot_id,omitempty"`
	Wall             time.Time `json:"wall"`
	ClockQuality     string    `json:"clock_quality"`
	BufferedReadings uint64    `json:"buffered_readings"`
	DroppedReadings  uint64    `json:"dropped_readings"`
	TimeZone         string    `json:"time_zone,omitempty"`
	// UnsyncedSince is the receive time of the first of the device's
	// consecutive statuses reporting a clock not synced; zero while synced.
	UnsyncedSince time.Time `json:"unsynced_since,omitzero"`
}

// StatusOf converts a decoded status message.
func StatusOf(site string, st *wire.Status, received time.Time) Status {
	return Status{
		Device: st.DeviceId, Site: site, Received: received.UTC(), Online: st.Online,
		AgentVersion: st.AgentVersion, BootID: st.BootId, Wall: time.Unix(0, st.WallNs).UTC(),
		ClockQuality: st.ClockQuality.Name(), BufferedReadings: st.BufferedReadings,
		DroppedReadings: st.DroppedReadings, TimeZone: st.TimeZone,
	}
}

// Batch collects one worker commit. Nothing is visible until Commit, which
// writes all of it atomically and durably.
type Batch struct {
	s    *Store
	b    *pebble.Batch
	p    int
	kb   []byte
	feed []batchFeedEntry
}

// NewBatch starts a commit of partition p.
func (s *Store) NewBatch(p int) *Batch {
	return &Batch{s: s, b: s.db.NewBatch(), p: p}
}

func (b *Batch) set(key, value []byte) { _ = b.b.Set(key, value, nil) }

func (b *Batch) setJSON(key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode %q: %w", key[:1], err)
	}
	b.set(key, data)
	return nil
}

// SetOffset records the partition's next readings-log offset to read.
func (b *Batch) SetOffset(next int64) {
	b.set(partitionKey(prefixOffset, b.p), binary.BigEndian.AppendUint64(nil, uint64(next)))
}

// PutEngine stores a window-engine delta: the header and the changed devices.
func (b *Batch) PutEngine(d window.Delta) {
	if d.Header != nil {
		b.set(partitionKey(prefixEngineHead, b.p), d.Header)
	}
	for _, ds := range d.Devices {
		b.set(partitionDeviceKey(prefixEngineDev, b.p, ds.Device), ds.State)
	}
}

// PutDedup stores a device's range set of one epoch (dedup.Set encoding).
func (b *Batch) PutDedup(device string, epoch uint64, set []byte) {
	b.set(dedupKey(b.p, device, epoch), set)
}

// PutDevice stores a device's counters (and feeds them, WithFeed).
func (b *Batch) PutDevice(info *DeviceInfo) error {
	return b.setJSONFeed(deviceKey(prefixDevice, info.ID), info, FeedDevice)
}

// PutStatus stores a device's latest status (and feeds it, WithFeed).
func (b *Batch) PutStatus(st Status) error {
	return b.setJSONFeed(deviceKey(prefixStatus, st.Device), st, FeedStatus)
}

func (b *Batch) setJSONFeed(key []byte, v any, kind FeedKind) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode %q: %w", key[:1], err)
	}
	b.set(key, data)
	b.appendFeed(kind, data)
	return nil
}

// PutBlock stores (or replaces) a raw-readings block of a series, keyed by
// its first reading.
func (b *Batch) PutBlock(device, channel string, q wire.Quantity, firstNs int64, epoch, seq uint64, block []byte) {
	b.set(blockKey(device, channel, q, firstNs, epoch, seq), block)
}

// PutOutput stores window results (upsert on pipeline, key, window start;
// every revision also as history) and late readings, and feeds each of
// them (WithFeed), in this batch. A worker is the only
// writer of its devices and its engine's revisions only grow, so the
// upsert needs no read.
func (b *Batch) PutOutput(out window.Output) error {
	for i := range out.Results {
		r := &out.Results[i]
		v, err := json.Marshal(toWindowResult(r))
		if err != nil {
			return fmt.Errorf("store: encode result: %w", err)
		}
		b.set(resultKey(r), v)
		b.set(historyKey(r), v)
		b.appendFeed(FeedResult, v)
	}
	for i := range out.Late {
		if err := b.setJSONFeed(lateKey(&out.Late[i]), toLateReading(&out.Late[i]), FeedLate); err != nil {
			return err
		}
	}
	return nil
}

// Len is the batch's size in bytes.
func (b *Batch) Len() int { return b.b.Len() }

// Commit writes the batch durably (fsync unless the store was opened
// WithSync(false)) and releases it.
//
// A batch larger than half a memtable (a fleet's idle timeouts passing at
// once make every device's state change in one commit) is kept by Pebble
// as a memtable of its own, in memory until flushed; Commit starts that
// flush at once rather than leaving it to the next write, which an idle
// collector does not make.
func (b *Batch) Commit() error {
	defer b.b.Close()
	large := uint64(b.b.Len()) >= b.s.memtable/2
	commit := func() error { return b.b.Commit(b.s.wo) }
	if len(b.feed) > 0 {
		commit = b.commitFeed
	}
	if err := commit(); err != nil {
		return fmt.Errorf("store: commit partition %d: %w", b.p, err)
	}
	if large {
		if _, err := b.s.db.AsyncFlush(); err != nil {
			return fmt.Errorf("store: flush after partition %d's commit: %w", b.p, err)
		}
	}
	return nil
}

// Abandon releases an uncommitted batch.
func (b *Batch) Abandon() { _ = b.b.Close() }
