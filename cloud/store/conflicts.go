package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Conflict is a reading whose identity (device, seq_epoch, seq) was already
// stored with other content. The first stored reading stays; the conflict
// is kept for inspection (bounded by count and age, Retention).
type Conflict struct {
	Device   string    `json:"device"`
	Site     string    `json:"site"`
	SeqEpoch uint64    `json:"seq_epoch,string"`
	Seq      uint64    `json:"seq"`
	Received time.Time `json:"received"`
	// Stored is the reading kept under this identity; nil when it is not in
	// the offered reading's series near the offered time (it was stored
	// with another channel, quantity or time).
	Stored *ConflictReading `json:"stored,omitempty"`
	// Offered is the reading refused.
	Offered ConflictReading `json:"offered"`
}

// ConflictReading is one side of a conflict.
type ConflictReading struct {
	Channel     string    `json:"channel"`
	Quantity    string    `json:"quantity"`
	Time        time.Time `json:"time"`
	Value       float64   `json:"value"`
	TimeQuality string    `json:"time_quality"`
}

// conflictKey orders conflicts by receive time; the partition, log offset
// and index within the record make a re-read after a crash rewrite the
// same key, not add a second entry.
func conflictKey(received time.Time, p int, offset int64, index int) []byte {
	k := binary.BigEndian.AppendUint64([]byte{prefixConflict}, orderedTime(received.UnixNano()))
	k = binary.BigEndian.AppendUint16(k, uint16(p))
	k = binary.BigEndian.AppendUint64(k, uint64(offset))
	return binary.BigEndian.AppendUint32(k, uint32(index))
}

// PutConflict stores a conflict found in the record at offset of the
// batch's partition; index tells conflicts of one record apart.
func (b *Batch) PutConflict(c Conflict, offset int64, index int) error {
	c.Received = c.Received.UTC()
	return b.setJSON(conflictKey(c.Received, b.p, offset, index), c)
}

// ConflictQuery selects conflicts, newest first: of one device when Device
// is set; at most Limit (0 means 100).
type ConflictQuery struct {
	Device string
	Limit  int
}

// Conflicts calls fn for the matching conflicts, newest first. fn's error
// stops the scan and is returned.
func (s *Store) Conflicts(q ConflictQuery, fn func(*Conflict) error) error {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixConflict}, UpperBound: []byte{prefixConflict + 1}})
	if err != nil {
		return fmt.Errorf("store: conflicts: %w", err)
	}
	defer it.Close()
	n := 0
	for it.Last(); it.Valid() && n < q.Limit; it.Prev() {
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("store: conflicts: %w", err)
		}
		var c Conflict
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("store: decode conflict %q: %w", it.Key(), err)
		}
		if q.Device != "" && c.Device != q.Device {
			continue
		}
		n++
		if err := fn(&c); err != nil {
			return err
		}
	}
	return it.Error()
}
