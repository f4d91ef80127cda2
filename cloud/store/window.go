package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// aggregate is the running state of one tumbling window.
type aggregate struct {
	Count    uint64
	Sum      float64
	Min      float64
	Max      float64
	Revision uint64 // 0 while open; 1 when first closed; +1 per later change
	Closed   bool
}

func (a *aggregate) add(v float64) {
	if a.Count == 0 || v < a.Min {
		a.Min = v
	}
	if a.Count == 0 || v > a.Max {
		a.Max = v
	}
	a.Count++
	a.Sum += v
}

const aggregateLen = 8*5 + 1

func (a *aggregate) marshal() []byte {
	b := make([]byte, 0, aggregateLen)
	b = binary.BigEndian.AppendUint64(b, a.Count)
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(a.Sum))
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(a.Min))
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(a.Max))
	b = binary.BigEndian.AppendUint64(b, a.Revision)
	if a.Closed {
		return append(b, 1)
	}
	return append(b, 0)
}

func unmarshalAggregate(b []byte) (aggregate, error) {
	if len(b) != aggregateLen {
		return aggregate{}, fmt.Errorf("store: window value has %d bytes, want %d", len(b), aggregateLen)
	}
	return aggregate{
		Count:    binary.BigEndian.Uint64(b[0:]),
		Sum:      math.Float64frombits(binary.BigEndian.Uint64(b[8:])),
		Min:      math.Float64frombits(binary.BigEndian.Uint64(b[16:])),
		Max:      math.Float64frombits(binary.BigEndian.Uint64(b[24:])),
		Revision: binary.BigEndian.Uint64(b[32:]),
		Closed:   b[40] == 1,
	}, nil
}

// windowStart is the start of the tumbling window of the given size that
// holds ns. Windows are aligned to the Unix epoch (UTC); floor division keeps
// times before 1970 in the right window.
func windowStart(ns int64, size time.Duration) int64 {
	s := int64(size)
	r := ns % s
	if r < 0 {
		r += s
	}
	return ns - r
}

// Window is one window result as the API reports it.
type Window struct {
	Device   string        `json:"device"`
	Channel  string        `json:"channel"`
	Quantity string        `json:"quantity"`
	Size     time.Duration `json:"-"`
	Start    time.Time     `json:"start"`
	End      time.Time     `json:"end"`
	Count    uint64        `json:"count"`
	Sum      float64       `json:"sum"`
	Mean     float64       `json:"mean"`
	Min      float64       `json:"min"`
	Max      float64       `json:"max"`
	Revision uint64        `json:"revision"`
	Closed   bool          `json:"closed"`
}

func windowResult(id windowID, a aggregate) Window {
	w := Window{
		Device:   id.Device,
		Channel:  id.Channel,
		Quantity: id.Quantity.Name(),
		Size:     id.Size,
		Start:    time.Unix(0, id.StartNs).UTC(),
		End:      time.Unix(0, id.StartNs+int64(id.Size)).UTC(),
		Count:    a.Count,
		Sum:      a.Sum,
		Min:      a.Min,
		Max:      a.Max,
		Revision: a.Revision,
		Closed:   a.Closed,
	}
	if a.Count > 0 {
		w.Mean = a.Sum / float64(a.Count)
	}
	return w
}
