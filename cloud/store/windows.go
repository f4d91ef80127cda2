package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gridedge/gridedge/shared/wire"
)

// WindowPipeline names the window pipeline the collector runs for the
// tumbling-window size size (-window-sizes): /api/v1/windows reads its
// results.
func WindowPipeline(size time.Duration) string {
	s := size.String()
	switch {
	case size%time.Hour == 0:
		s = fmt.Sprintf("%dh", size/time.Hour)
	case size%time.Minute == 0:
		s = fmt.Sprintf("%dm", size/time.Minute)
	}
	return "windows_" + s
}

// WindowQuery selects tumbling windows. Device and Size are required; an
// empty Channel or zero Quantity matches all. From/To bound the window start
// (From inclusive, To exclusive); zero means unbounded. Limit 0 means 1000.
type WindowQuery struct {
	Device   string
	Channel  string
	Quantity wire.Quantity
	Size     time.Duration
	From, To time.Time
	Limit    int
}

// Window is one tumbling window as /api/v1/windows reports it.
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
	// Closed is false for a provisional result (its device went quiet
	// before the window's end passed its watermark).
	Closed bool `json:"closed"`
}

func windowOf(r WindowResult, size time.Duration) Window {
	v := func(name string) float64 {
		if x, ok := r.Values[name]; ok && !math.IsNaN(x) {
			return x
		}
		return 0
	}
	return Window{Device: r.Device, Channel: r.Channel, Quantity: r.Quantity, Size: size, Start: r.Start, End: r.End,
		Count: uint64(r.Count), Sum: v("sum"), Mean: v("mean"), Min: v("min"), Max: v("max"),
		Revision: uint64(r.Revision), Closed: !r.Provisional}
}

// Windows calls fn for the matching windows ordered by channel, quantity
// and start, one at a time. fn's error stops the scan and is returned.
func (s *Store) Windows(q WindowQuery, fn func(*Window) error) error {
	return s.Results(ResultQuery{Pipeline: WindowPipeline(q.Size), Device: q.Device, Channel: q.Channel,
		Quantity: q.Quantity, From: q.From, To: q.To, Limit: q.Limit}, func(r *WindowResult) error {
		if q.Quantity != 0 && r.Quantity != q.Quantity.Name() {
			return nil
		}
		w := windowOf(*r, q.Size)
		return fn(&w)
	})
}

// LatestWindows returns, for every series of the device, its n newest
// windows of the given size, ordered by channel, quantity and start. It
// skips over older windows instead of reading them.
func (s *Store) LatestWindows(device string, size time.Duration, n int) ([]Window, error) {
	prefix := resultSeriesPrefix(prefixResult, WindowPipeline(size), device, "", 0)
	prefix = prefix[:len(prefix)-1-4] // pipeline 0 device 0
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("store: latest windows of %s: %w", device, err)
	}
	defer it.Close()
	var groups [][]Window // series last first, each newest first
	var series []Window
	flush := func() {
		if len(series) > 0 {
			groups = append(groups, series)
		}
		series = nil
	}
	var current []byte
	for it.Last(); it.Valid(); {
		sp, _, err := splitResultKey(it.Key(), false)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(sp, current) {
			flush()
			current = bytes.Clone(sp)
		}
		var r WindowResult
		if err := json.Unmarshal(it.Value(), &r); err != nil {
			return nil, fmt.Errorf("store: decode result: %w", err)
		}
		series = append(series, windowOf(r, size))
		if len(series) == n {
			it.SeekLT(current) // the previous series
			continue
		}
		it.Prev()
	}
	flush()
	var out []Window
	for g := len(groups) - 1; g >= 0; g-- {
		for i := len(groups[g]) - 1; i >= 0; i-- {
			out = append(out, groups[g][i])
		}
	}
	return out, it.Error()
}
