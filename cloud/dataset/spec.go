package dataset

import (
	"slices"

	"github.com/gridedge/gridedge/cloud/window"
)

// Spec is one dataset: a pipeline whose results carry rows, and the names
// of its value columns (the joined channels of a joined session pipeline,
// else "value").
type Spec struct {
	Pipeline string
	Columns  []string
}

// fixedColumns are the columns every dataset row starts with.
var fixedColumns = []string{"device", "channel", "quantity", "window_start", "window_end", "revision", "time"}

// Specs returns the datasets among pipelines: session pipelines and
// pipelines with a readings aggregation, in configuration order.
func Specs(pipes []window.Pipeline) []Spec {
	var out []Spec
	for _, p := range pipes {
		rows := p.Window.Kind == window.Session
		for _, a := range p.Aggregations {
			rows = rows || a.Func == window.Readings
		}
		if !rows {
			continue
		}
		cols := []string{"value"}
		if len(p.Join) > 0 {
			cols = slices.Clone(p.Join)
		}
		for i, c := range cols {
			// A channel named like a fixed column gets a suffix.
			if slices.Contains(fixedColumns, c) {
				cols[i] = c + "_value"
			}
		}
		out = append(out, Spec{Pipeline: p.Name, Columns: cols})
	}
	return out
}

// Header returns every column name of the dataset, in file order.
func (s Spec) Header() []string { return append(slices.Clone(fixedColumns), s.Columns...) }
