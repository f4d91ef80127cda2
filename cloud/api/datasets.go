package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/gridedge/gridedge/cloud/dataset"
	"github.com/gridedge/gridedge/cloud/store"
)

// Bounds of GET /api/v1/datasets: a range of at most MaxDatasetSpan of
// window starts, at most MaxDatasetRows rows (default DefaultDatasetRows).
const (
	MaxDatasetSpan     = 31 * 24 * time.Hour
	DefaultDatasetRows = 1_000_000
	MaxDatasetRows     = 10_000_000
)

// Trailers of a dataset answer: whether the rows stopped at the limit, and
// an error that happened after the answer started.
const (
	trailerTruncated = "Gridedge-Truncated"
	trailerError     = "Gridedge-Error"
)

// WithDatasets names the dataset pipelines GET /api/v1/datasets exports and
// their value columns (dataset.Specs of the configured pipelines).
func WithDatasets(specs []dataset.Spec) Option {
	return func(s *server) { s.datasetSpecs = slices.Clone(specs) }
}

type datasetQuery struct {
	spec   dataset.Spec
	format dataset.Format
	q      store.ResultQuery
	limit  int
}

func parseDatasetQuery(v url.Values, specs []dataset.Spec) (datasetQuery, *Error) {
	var dq datasetQuery
	name := v.Get("pipeline")
	i := slices.IndexFunc(specs, func(s dataset.Spec) bool { return s.Pipeline == name })
	if i < 0 {
		var names []string
		for _, s := range specs {
			names = append(names, s.Pipeline)
		}
		msg := fmt.Sprintf("pipeline %q: want a dataset pipeline, one of %v", name, names)
		if name == "" {
			msg = fmt.Sprintf("pipeline is required, one of %v", names)
		}
		return dq, &Error{Parameter: "pipeline", Error: msg}
	}
	dq.spec = specs[i]
	fname := v.Get("format")
	if fname == "" {
		fname = dataset.Formats()[0].Name
	}
	f, ok := dataset.LookupFormat(fname)
	if !ok {
		return dq, &Error{Parameter: "format", Error: fmt.Sprintf("format %q: want one of %v", fname, dataset.FormatNames())}
	}
	dq.format = f
	dq.q = store.ResultQuery{Pipeline: dq.spec.Pipeline, Limit: math.MaxInt}
	var perr *Error
	if dq.q.Device, perr = parseDevice(v, false); perr != nil {
		return dq, perr
	}
	if dq.q.From, dq.q.To, perr = timeRange(v); perr != nil {
		return dq, perr
	}
	switch {
	case dq.q.From.IsZero():
		return dq, &Error{Parameter: "from", Error: "from is required (RFC 3339): a dataset covers a bounded range"}
	case dq.q.To.IsZero():
		return dq, &Error{Parameter: "to", Error: "to is required (RFC 3339): a dataset covers a bounded range"}
	case dq.q.To.Sub(dq.q.From) > MaxDatasetSpan:
		return dq, &Error{Parameter: "to", Error: fmt.Sprintf("from..to spans %v: at most %v per request", dq.q.To.Sub(dq.q.From), MaxDatasetSpan)}
	}
	dq.limit, perr = parseLimit(v.Get("limit"), DefaultDatasetRows, MaxDatasetRows)
	return dq, perr
}

// datasets streams the rows of a dataset pipeline's final results (latest
// revisions; provisional and retracted ones left out) as CSV or Parquet.
func (s *server) datasets(w http.ResponseWriter, r *http.Request) {
	dq, perr := parseDatasetQuery(r.URL.Query(), s.datasetSpecs)
	if perr != nil {
		writeJSON(w, http.StatusBadRequest, perr)
		return
	}
	h := w.Header()
	h.Set("Content-Type", dq.format.ContentType)
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", dq.spec.Pipeline+"."+dq.format.Extension))
	h.Set("Trailer", trailerTruncated+", "+trailerError)
	dw, err := dq.format.New(w, dq.spec)
	if err != nil {
		s.fail(w, err)
		return
	}
	n, truncated := 0, false
	err = s.res.Results(dq.q, func(res *store.WindowResult) error {
		if res.Provisional || res.Retracted {
			return nil
		}
		return dataset.EachRow(res, func(row *dataset.Row) error {
			if n == dq.limit {
				truncated = true
				return errStop
			}
			n++
			return dw.Write(row)
		})
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	if cerr := dw.Close(truncated); err == nil {
		err = cerr
	}
	h.Set(trailerTruncated, strconv.FormatBool(truncated))
	if err != nil {
		h.Set(trailerError, err.Error())
		s.log.Warn("api dataset answer cut short", "pipeline", dq.spec.Pipeline, "rows", n, "err", err)
	}
}
