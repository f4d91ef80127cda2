package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// DeadLetter is a payload the collector could not accept, kept for diagnosis.
type DeadLetter struct {
	ID       uint64    `json:"id"`
	Reason   string    `json:"reason"`
	Detail   string    `json:"detail"`
	Topic    string    `json:"topic"`
	Received time.Time `json:"received"`
	// Bytes is the payload's size (filled by the listing, which leaves
	// Payload out).
	Bytes   int    `json:"bytes"`
	Payload []byte `json:"payload,omitempty"` // raw bytes (base64 in JSON)
}

func deadLetterKey(received time.Time, id uint64) []byte {
	k := binary.BigEndian.AppendUint64([]byte{prefixDeadLetter}, orderedTime(received.UnixNano()))
	return binary.BigEndian.AppendUint64(k, id)
}

// PutDeadLetter durably records a rejected payload and returns its id.
func (s *Store) PutDeadLetter(dl DeadLetter) (uint64, error) {
	dl.ID = s.nextDLQ.Add(1)
	dl.Received = dl.Received.UTC()
	dl.Bytes = len(dl.Payload)
	v, err := json.Marshal(dl)
	if err != nil {
		return 0, fmt.Errorf("store: dead letter: %w", err)
	}
	if err := s.db.Set(deadLetterKey(dl.Received, dl.ID), v, s.wo); err != nil {
		return 0, fmt.Errorf("store: dead letter: %w", err)
	}
	return dl.ID, nil
}

// DeadLetters calls fn for up to limit dead letters, newest first (limit 0
// means 100), without their payloads (Bytes says how large each was): a
// listing holds one entry at a time, whatever the payloads' sizes. fn's
// error stops the scan and is returned.
func (s *Store) DeadLetters(limit int, fn func(*DeadLetter) error) error {
	if limit <= 0 {
		limit = 100
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixDeadLetter}, UpperBound: []byte{prefixDeadLetter + 1}})
	if err != nil {
		return fmt.Errorf("store: dead letters: %w", err)
	}
	defer it.Close()
	n := 0
	for it.Last(); it.Valid() && n < limit; it.Prev() {
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("store: dead letters: %w", err)
		}
		var dl DeadLetter
		if err := decodeWithoutPayload(v, &dl); err != nil {
			return fmt.Errorf("store: decode dead letter %q: %w", it.Key(), err)
		}
		n++
		if err := fn(&dl); err != nil {
			return err
		}
	}
	return it.Error()
}

// encodedLen records the length of a JSON value without copying it.
type encodedLen int

func (n *encodedLen) UnmarshalJSON(b []byte) error {
	*n = encodedLen(len(bytes.Trim(b, `"`)))
	return nil
}

// decodeWithoutPayload decodes a stored dead letter without allocating its
// payload (the decoder scans it in place).
func decodeWithoutPayload(v []byte, dl *DeadLetter) error {
	var head struct {
		ID       uint64     `json:"id"`
		Reason   string     `json:"reason"`
		Detail   string     `json:"detail"`
		Topic    string     `json:"topic"`
		Received time.Time  `json:"received"`
		Bytes    int        `json:"bytes"`
		Payload  encodedLen `json:"payload"`
	}
	if err := json.Unmarshal(v, &head); err != nil {
		return err
	}
	*dl = DeadLetter{ID: head.ID, Reason: head.Reason, Detail: head.Detail, Topic: head.Topic, Received: head.Received, Bytes: head.Bytes}
	if dl.Bytes == 0 && head.Payload > 0 {
		// Written before sizes were stored: the base64 length tells it.
		dl.Bytes = int(head.Payload) * 3 / 4
	}
	return nil
}

// DeadLetter returns one dead letter with its payload; ok is false when no
// dead letter has that id (never written, or trimmed).
func (s *Store) DeadLetter(id uint64) (dl DeadLetter, ok bool, err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixDeadLetter}, UpperBound: []byte{prefixDeadLetter + 1}})
	if err != nil {
		return dl, false, fmt.Errorf("store: dead letter %d: %w", id, err)
	}
	defer it.Close()
	// Keys are (receive time, id); ids grow with time, so search from the
	// newest, reading keys only.
	for it.Last(); it.Valid(); it.Prev() {
		k := it.Key()
		if len(k) != 17 || binary.BigEndian.Uint64(k[9:]) != id {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return dl, false, fmt.Errorf("store: dead letter %d: %w", id, err)
		}
		if err := json.Unmarshal(v, &dl); err != nil {
			return dl, false, fmt.Errorf("store: decode dead letter %d: %w", id, err)
		}
		return dl, true, nil
	}
	return dl, false, it.Error()
}
