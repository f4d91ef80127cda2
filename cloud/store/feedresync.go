package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gridedge/gridedge/cloud/store/seriesblock"
	"github.com/gridedge/gridedge/shared/wire"
)

// FeedResync calls fn, from one consistent snapshot, for the current
// result of every window, every late reading, device and status whose
// device owns selects (the devices of a partition), as feed entries with
// Seq 0, and returns partition p's next feed sequence at that snapshot:
// a sink that stores all of them and then follows the feed from that
// sequence misses nothing.
//
// With readingsSince set and the store feeding raw readings, the stored raw
// readings of those devices dated from readingsSince on are included too.
func (s *Store) FeedResync(p int, owns func(device string) bool, readingsSince time.Time, fn func(FeedEntry) error) (uint64, error) {
	fp := s.feedPart(p)
	fp.mu.Lock()
	snap := s.db.NewSnapshot()
	next := fp.st.Next
	fp.mu.Unlock()
	defer snap.Close()
	at := time.Now().UTC()
	for _, c := range []struct {
		prefix byte
		kind   FeedKind
		device func(k []byte) string
	}{
		{prefixDevice, FeedDevice, func(k []byte) string { return string(k[1:]) }},
		{prefixStatus, FeedStatus, func(k []byte) string { return string(k[1:]) }},
		{prefixResult, FeedResult, func(k []byte) string { return field(k[1:], 1) }},
		{prefixLate, FeedLate, func(k []byte) string { return field(k[1:], 0) }},
	} {
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{c.prefix}, UpperBound: []byte{c.prefix + 1}})
		if err != nil {
			return 0, err
		}
		for it.First(); it.Valid(); it.Next() {
			if !owns(c.device(it.Key())) {
				continue
			}
			if err := fn(FeedEntry{Kind: c.kind, At: at, Payload: bytes.Clone(it.Value())}); err != nil {
				it.Close()
				return 0, err
			}
		}
		err = it.Error()
		it.Close()
		if err != nil {
			return 0, fmt.Errorf("store: feed resync: %w", err)
		}
	}
	if !readingsSince.IsZero() && s.FeedsReadings() {
		if err := resyncReadings(snap, owns, readingsSince.UnixNano(), at, fn); err != nil {
			return 0, err
		}
	}
	return next, nil
}

// resyncReadings feeds the raw readings dated from since on of the devices
// owns selects.
func resyncReadings(snap *pebble.Snapshot, owns func(string) bool, since int64, at time.Time, fn func(FeedEntry) error) error {
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixBlock}, UpperBound: []byte{prefixBlock + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	var pts []seriesblock.Point
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < 1+2+4+24 {
			return errBadKey
		}
		device := field(k[1:], 0)
		if !owns(device) || timeFromOrdered(binary.BigEndian.Uint64(k[len(k)-24:]))+int64(MaxBlockSpan) < since {
			continue
		}
		channel := field(k[1:], 1)
		q := wire.Quantity(binary.BigEndian.Uint32(k[len(k)-28:]))
		if pts, err = seriesblock.AppendPoints(pts[:0], it.Value()); err != nil {
			return fmt.Errorf("store: feed resync: block of %s/%s: %w", device, channel, err)
		}
		for _, pt := range pts {
			if pt.TimeNs < since {
				continue
			}
			quality, flags := UnpackQuality(pt.Quality)
			data, err := json.Marshal(RawReading{Device: device, Channel: channel, Quantity: q.Name(),
				Time: time.Unix(0, pt.TimeNs).UTC(), Value: pt.Value, TimeQuality: quality.Name(), TimeErrorNs: pt.ErrNs,
				SeqEpoch: pt.Epoch, Seq: pt.Seq, Received: time.Unix(0, pt.ReceivedNs).UTC(), Flags: flags.Names()})
			if err != nil {
				return err
			}
			if err := fn(FeedEntry{Kind: FeedReading, At: at, Payload: data}); err != nil {
				return err
			}
		}
	}
	return it.Error()
}

// field returns the i-th 0-separated part of k.
func field(k []byte, i int) string {
	for ; i > 0; i-- {
		j := bytes.IndexByte(k, 0)
		if j < 0 {
			return ""
		}
		k = k[j+1:]
	}
	if j := bytes.IndexByte(k, 0); j >= 0 {
		k = k[:j]
	}
	return string(k)
}
