package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/dataset"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/cloud/window"
	"github.com/gridedge/gridedge/shared/wire"
)

// datasetServer stores session and snapshot results of two devices (with a
// provisional and a retracted session, which datasets leave out) and
// serves them.
func datasetServer(t *testing.T) *httptest.Server {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pipes := window.DefaultPipelines()
	names := []string{"readings", "state_readings", "state_merged"}
	session := func(dev string, start time.Time, rows int, rev uint32) window.Result {
		var rs []window.Row
		for i := range rows {
			rs = append(rs, window.Row{TimeNs: start.Add(time.Duration(i) * time.Second).UnixNano(),
				Values: []float64{1234.5 + float64(i)/3, 1, 0, 0, float64(i % 2), 0}})
		}
		return window.Result{Pipeline: "appliance_sessions", Key: window.Key{Device: dev, Channel: "mains+kettle+oven+washer+fridge+water_heater"},
			Start: start.UnixNano(), End: start.Add(time.Duration(rows+4) * time.Second).UnixNano(), Revision: rev,
			Names: names, Values: []float64{float64(rows), float64(rows * 5), float64(rows * 5)}, Count: int64(rows), Coverage: 1,
			WorstQuality: wire.TimeQuality_TIME_QUALITY_SYNCED, Rows: rs}
	}
	out := window.Output{Results: []window.Result{
		session("dev-1", t0, 40, 1), session("dev-1", t0.Add(10*time.Minute), 35, 2),
		session("dev-2", t0.Add(time.Minute), 31, 1), session("dev-2", t0.Add(time.Hour), 50, 1),
	}}
	prov := session("dev-2", t0.Add(2*time.Hour), 60, 1)
	prov.Provisional = true
	retracted := session("dev-1", t0.Add(30*time.Minute), 0, 3)
	retracted.Retracted, retracted.Rows = true, nil
	snap := window.Result{Pipeline: "power_snapshots", Key: window.Key{Device: "dev-1", Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER},
		Start: t0.UnixNano(), End: t0.Add(15 * time.Second).UnixNano(), Revision: 1, Names: []string{"readings"}, Values: []float64{2},
		Rows: []window.Row{{TimeNs: t0.UnixNano(), Values: []float64{5}}, {TimeNs: t0.Add(time.Second).UnixNano(), Values: []float64{6}}}}
	out.Results = append(out.Results, prov, retracted, snap)
	b := st.NewBatch(0)
	if err := b.PutOutput(out); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	var pnames []string
	for _, p := range pipes {
		pnames = append(pnames, p.Name)
	}
	srv := httptest.NewServer(New(st, WithPipelines(pnames), WithDatasets(dataset.Specs(pipes))))
	t.Cleanup(srv.Close)
	return srv
}

// apiRows flattens what /api/v1/results serves for a pipeline into dataset
// rows: final results only, in the API's order.
func apiRows(t *testing.T, srv *httptest.Server, pipeline string) []dataset.Row {
	var body struct{ Results []store.WindowResult }
	get(t, srv, "/api/v1/results?pipeline="+pipeline+"&limit=100000", 200, &body)
	var rows []dataset.Row
	for i := range body.Results {
		r := &body.Results[i]
		if r.Provisional || r.Retracted {
			continue
		}
		dataset.EachRow(r, func(row *dataset.Row) error {
			c := *row
			c.Values = append([]float64(nil), row.Values...)
			rows = append(rows, c)
			return nil
		})
	}
	return rows
}

func export(t *testing.T, srv *httptest.Server, query string) ([]byte, http.Header, http.Header) {
	t.Helper()
	resp, err := http.Get(srv.URL + "/api/v1/datasets?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("export %s: %d %s", query, resp.StatusCode, body)
	}
	return body, resp.Header, resp.Trailer
}

func sameRows(t *testing.T, what string, got, want []dataset.Row) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		same := g.Device == w.Device && g.Channel == w.Channel && g.Quantity == w.Quantity && g.WindowStart.Equal(w.WindowStart) &&
			g.WindowEnd.Equal(w.WindowEnd) && g.Revision == w.Revision && g.Time.Equal(w.Time) && len(g.Values) == len(w.Values)
		for j := 0; same && j < len(w.Values); j++ {
			same = g.Values[j] == w.Values[j]
		}
		if !same {
			t.Fatalf("%s: row %d: %+v, want %+v", what, i, g, w)
		}
	}
}

// The exported CSV and Parquet, read back with the same library, hold
// exactly the rows the results API serves.
func TestDatasetExportRoundTripsToTheAPIRows(t *testing.T) {
	srv := datasetServer(t)
	from, to := t0.Add(-time.Hour).Format(time.RFC3339), t0.Add(24*time.Hour).Format(time.RFC3339)
	for _, pipeline := range []string{"appliance_sessions", "power_snapshots"} {
		want := apiRows(t, srv, pipeline)
		if len(want) == 0 {
			t.Fatalf("%s: no rows in the fixture", pipeline)
		}
		collect := func(dst *[]dataset.Row) func(*dataset.Row) error {
			return func(r *dataset.Row) error {
				c := *r
				c.Values = append([]float64(nil), r.Values...)
				*dst = append(*dst, c)
				return nil
			}
		}
		body, head, trailer := export(t, srv, "pipeline="+pipeline+"&from="+from+"&to="+to)
		if ct := head.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Fatalf("content type %q", ct)
		}
		if trailer.Get("Gridedge-Truncated") != "false" || trailer.Get("Gridedge-Error") != "" {
			t.Fatalf("trailer %v", trailer)
		}
		var got []dataset.Row
		if _, err := dataset.ReadCSV(bytes.NewReader(body), collect(&got)); err != nil {
			t.Fatal(err)
		}
		sameRows(t, pipeline+" csv", got, want)

		body, _, _ = export(t, srv, "pipeline="+pipeline+"&format=parquet&from="+from+"&to="+to)
		got = nil
		cols, truncated, err := dataset.ReadParquet(bytes.NewReader(body), int64(len(body)), collect(&got))
		if err != nil {
			t.Fatal(err)
		}
		if truncated {
			t.Fatal("parquet says truncated")
		}
		if pipeline == "appliance_sessions" && strings.Join(cols, ",") != "mains,kettle,oven,washer,fridge,water_heater" {
			t.Fatalf("columns %v", cols)
		}
		sameRows(t, pipeline+" parquet", got, want)
	}
	// One device, a narrower range, a row limit.
	body, _, trailer := export(t, srv, "pipeline=appliance_sessions&device=dev-2&from="+t0.Format(time.RFC3339)+"&to="+t0.Add(30*time.Minute).Format(time.RFC3339)+"&limit=10")
	n := 0
	if _, err := dataset.ReadCSV(bytes.NewReader(body), func(r *dataset.Row) error {
		if r.Device != "dev-2" || !r.WindowStart.Equal(t0.Add(time.Minute)) {
			t.Fatalf("row of another device or window: %+v", r)
		}
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 10 || trailer.Get("Gridedge-Truncated") != "true" {
		t.Fatalf("%d rows, truncated %q; want 10, true", n, trailer.Get("Gridedge-Truncated"))
	}
	body, _, _ = export(t, srv, "pipeline=appliance_sessions&format=parquet&from="+from+"&to="+to+"&limit=5")
	if _, truncated, err := dataset.ReadParquet(bytes.NewReader(body), int64(len(body)), func(*dataset.Row) error { return nil }); err != nil || !truncated {
		t.Fatalf("parquet at the limit: truncated %v, %v", truncated, err)
	}
}

func TestDatasetBadParametersAre400(t *testing.T) {
	srv := datasetServer(t)
	from, to := "&from=2026-11-23T00:00:00Z", "&to=2026-11-24T00:00:00Z"
	for q, param := range map[string]string{
		"from=2026-11-23T00:00:00Z" + to:                                  "pipeline",
		"pipeline=power_1m" + from + to:                                   "pipeline",
		"pipeline=appliance_sessions&format=xlsx" + from + to:             "format",
		"pipeline=appliance_sessions" + to:                                "from",
		"pipeline=appliance_sessions" + from:                              "to",
		"pipeline=appliance_sessions" + from + "&to=2027-01-01T00:00:00Z": "to",
		"pipeline=appliance_sessions&from=yesterday" + to:                 "from",
		"pipeline=appliance_sessions&device=a/b" + from + to:              "device",
		"pipeline=appliance_sessions&limit=0" + from + to:                 "limit",
		"pipeline=appliance_sessions&limit=10000001" + from + to:          "limit",
		"pipeline=appliance_sessions&to=2026-11-22T00:00:00Z" + from:      "to",
	} {
		var e Error
		body := get(t, srv, "/api/v1/datasets?"+q, 400, nil)
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Parameter != param {
			t.Errorf("%s: %s, want parameter %s", q, body, param)
		}
	}
}

func FuzzParseDatasetQuery(f *testing.F) {
	specs := dataset.Specs(window.DefaultPipelines())
	f.Add("pipeline=appliance_sessions&format=parquet&from=2026-11-23T00:00:00Z&to=2026-11-24T00:00:00Z&limit=5&device=d")
	f.Add("pipeline=power_snapshots&from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z")
	f.Add("%zz&pipeline=&&=")
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		dq, perr := parseDatasetQuery(v, specs)
		if perr != nil {
			if perr.Parameter == "" || perr.Error == "" {
				t.Fatalf("error without a parameter: %+v", perr)
			}
			return
		}
		if dq.q.From.IsZero() || dq.q.To.IsZero() || !dq.q.To.After(dq.q.From) || dq.q.To.Sub(dq.q.From) > MaxDatasetSpan {
			t.Fatalf("accepted an unbounded range %v..%v", dq.q.From, dq.q.To)
		}
		if dq.limit < 1 || dq.limit > MaxDatasetRows || dq.format.New == nil || len(dq.spec.Columns) == 0 {
			t.Fatalf("accepted %+v", dq)
		}
	})
}
