package dataset

import (
	"time"

	"github.com/gridedge/gridedge/cloud/store"
)

// Row is one dataset row: a reading (snapshots) or joined second
// (sessions) of one result, with the window it belongs to.
type Row struct {
	Device   string
	Channel  string
	Quantity string // empty for joined series
	// WindowStart and WindowEnd identify the result (the session or
	// snapshot); Revision is its revision.
	WindowStart, WindowEnd time.Time
	Revision               uint32
	Time                   time.Time
	// Values holds one value per column of the Spec.
	Values []float64
}

// EachRow calls fn for every row of r, in the result's (time) order. The
// Row passed is reused between calls.
func EachRow(r *store.WindowResult, fn func(*Row) error) error {
	row := Row{Device: r.Device, Channel: r.Channel, Quantity: r.Quantity,
		WindowStart: r.Start, WindowEnd: r.End, Revision: r.Revision}
	for _, rr := range r.Rows {
		row.Time, row.Values = rr.Time, rr.Values
		if err := fn(&row); err != nil {
			return err
		}
	}
	return nil
}
