package dataset_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gridedge/gridedge/cloud/dataset"
	"github.com/gridedge/gridedge/cloud/window"
)

func testRows(n, cols int) []dataset.Row {
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 123456789, time.UTC)
	var rs []dataset.Row
	for i := range n {
		vals := make([]float64, cols)
		for c := range vals {
			vals[c] = float64(i*cols+c)/7 - 3e5
		}
		if i == 1 {
			vals[0] = math.SmallestNonzeroFloat64
		}
		rs = append(rs, dataset.Row{Device: "home-" + string(rune('a'+i%3)), Channel: "mains+kettle", Quantity: "",
			WindowStart: t0.Add(time.Duration(i/60) * time.Minute), WindowEnd: t0.Add(time.Duration(i/60+1) * time.Minute),
			Revision: uint32(1 + i%2), Time: t0.Add(time.Duration(i) * time.Second), Values: vals})
	}
	return rs
}

func sameRow(a, b *dataset.Row) bool {
	if a.Device != b.Device || a.Channel != b.Channel || a.Quantity != b.Quantity || !a.WindowStart.Equal(b.WindowStart) ||
		!a.WindowEnd.Equal(b.WindowEnd) || a.Revision != b.Revision || !a.Time.Equal(b.Time) || len(a.Values) != len(b.Values) {
		return false
	}
	for i := range a.Values {
		if math.Float64bits(a.Values[i]) != math.Float64bits(b.Values[i]) {
			return false
		}
	}
	return true
}

func write(t *testing.T, format string, spec dataset.Spec, rows []dataset.Row, truncated bool) []byte {
	t.Helper()
	f, ok := dataset.LookupFormat(format)
	if !ok {
		t.Fatalf("no format %s", format)
	}
	var buf bytes.Buffer
	w, err := f.New(&buf, spec)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		if err := w.Write(&rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(truncated); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Both formats read back exactly what was written, across several Parquet
// row groups, each at most ParquetRowGroupRows rows.
func TestCSVAndParquetRoundTrip(t *testing.T) {
	spec := dataset.Spec{Pipeline: "appliance_sessions", Columns: []string{"mains", "kettle", "time_value"}}
	rows := testRows(2*dataset.ParquetRowGroupRows+100, 3)

	var got []dataset.Row
	collect := func(r *dataset.Row) error {
		c := *r
		c.Values = append([]float64(nil), r.Values...)
		got = append(got, c)
		return nil
	}
	check := func(what string, cols []string) {
		t.Helper()
		if strings.Join(cols, ",") != "mains,kettle,time_value" {
			t.Fatalf("%s: columns %v", what, cols)
		}
		if len(got) != len(rows) {
			t.Fatalf("%s: %d rows read back, want %d", what, len(got), len(rows))
		}
		for i := range rows {
			if !sameRow(&got[i], &rows[i]) {
				t.Fatalf("%s: row %d: %+v, want %+v", what, i, got[i], rows[i])
			}
		}
	}
	csvBytes := write(t, "csv", spec, rows, false)
	cols, err := dataset.ReadCSV(bytes.NewReader(csvBytes), collect)
	if err != nil {
		t.Fatal(err)
	}
	check("csv", cols)

	got = nil
	pq := write(t, "parquet", spec, rows, true)
	cols, truncated, err := dataset.ReadParquet(bytes.NewReader(pq), int64(len(pq)), collect)
	if err != nil {
		t.Fatal(err)
	}
	check("parquet", cols)
	if !truncated {
		t.Fatal("truncated mark lost")
	}
	f, err := parquet.OpenFile(bytes.NewReader(pq), int64(len(pq)))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.RowGroups()); n != 3 {
		t.Fatalf("%d row groups, want 3", n)
	}
	for i, rg := range f.RowGroups() {
		if rg.NumRows() > dataset.ParquetRowGroupRows {
			t.Fatalf("row group %d has %d rows, bound %d", i, rg.NumRows(), dataset.ParquetRowGroupRows)
		}
	}
}

func TestReadCSVRefusesBadInput(t *testing.T) {
	head := "device,channel,quantity,window_start,window_end,revision,time,value\n"
	ok := "d,c,,2026-01-01T00:00:00Z,2026-01-01T00:01:00Z,1,2026-01-01T00:00:01Z,5\n"
	for name, in := range map[string]string{
		"empty":        "",
		"wrong header": "a,b,c\n" + ok,
		"no values":    "device,channel,quantity,window_start,window_end,revision,time\n",
		"bad time":     head + "d,c,,yesterday,2026-01-01T00:01:00Z,1,2026-01-01T00:00:01Z,5\n",
		"bad revision": head + "d,c,,2026-01-01T00:00:00Z,2026-01-01T00:01:00Z,-1,2026-01-01T00:00:01Z,5\n",
		"bad value":    head + "d,c,,2026-01-01T00:00:00Z,2026-01-01T00:01:00Z,1,2026-01-01T00:00:01Z,five\n",
		"short line":   head + ok + "d,c\n",
	} {
		n := 0
		_, err := dataset.ReadCSV(strings.NewReader(in), func(*dataset.Row) error { n++; return nil })
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		if strings.Contains(name, "short") && (n != 1 || !strings.Contains(err.Error(), "line 3")) {
			t.Errorf("%s: %d rows before the error %v, want 1 and line 3", name, n, err)
		}
	}
	stop := errors.New("stop")
	if _, err := dataset.ReadCSV(strings.NewReader(head+ok+ok), func(*dataset.Row) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("callback error: %v", err)
	}
}

func TestReadParquetRefusesOtherFiles(t *testing.T) {
	for name, in := range map[string][]byte{"garbage": []byte("PAR1 not really PAR1"), "csv": []byte("a,b\n1,2\n")} {
		if _, _, err := dataset.ReadParquet(bytes.NewReader(in), int64(len(in)), func(*dataset.Row) error { return nil }); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// A Parquet file that is not a dataset.
	var buf bytes.Buffer
	type other struct{ X int64 }
	if err := parquet.Write(&buf, []other{{1}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := dataset.ReadParquet(bytes.NewReader(buf.Bytes()), int64(buf.Len()), func(*dataset.Row) error { return nil }); err == nil {
		t.Error("foreign parquet file: no error")
	}
}

func FuzzReadCSV(f *testing.F) {
	spec := dataset.Spec{Columns: []string{"mains", "kettle"}}
	var buf bytes.Buffer
	w, _ := mustFormat("csv").New(&buf, spec)
	for _, r := range testRows(3, 2) {
		w.Write(&r)
	}
	w.Close(false)
	f.Add(buf.Bytes())
	f.Add([]byte("device,channel,quantity,window_start,window_end,revision,time,v\n\"unterminated"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var rows []dataset.Row
		cols, err := dataset.ReadCSV(bytes.NewReader(in), func(r *dataset.Row) error {
			if len(r.Values) == 0 {
				t.Fatal("row without values")
			}
			c := *r
			c.Values = append([]float64(nil), r.Values...)
			rows = append(rows, c)
			return nil
		})
		if err != nil {
			return
		}
		// What reads back cleanly writes and reads back the same.
		var out bytes.Buffer
		w, err := mustFormat("csv").New(&out, dataset.Spec{Columns: cols})
		if err != nil {
			return // a column list the writer refuses
		}
		for i := range rows {
			if err := w.Write(&rows[i]); err != nil {
				t.Fatal(err)
			}
		}
		w.Close(false)
		i := 0
		if _, err := dataset.ReadCSV(&out, func(r *dataset.Row) error {
			if !sameRow(r, &rows[i]) && !hasNaN(r.Values) {
				t.Fatalf("row %d: %+v, want %+v", i, r, rows[i])
			}
			i++
			return nil
		}); err != nil || i != len(rows) {
			t.Fatalf("re-read: %d rows, %v", i, err)
		}
	})
}

func hasNaN(vs []float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) {
			return true
		}
	}
	return false
}

func mustFormat(name string) dataset.Format {
	f, _ := dataset.LookupFormat(name)
	return f
}

// Per-device series stop at the device limit; the rest is summed under
// "_other"; the ratios are those of the rows and state readings seen.
func TestQualityCardinalityIsBounded(t *testing.T) {
	q := dataset.NewQuality(window.DefaultPipelines(), dataset.WithQualityDevices(3))
	var rs []window.Result
	for d := range 10 {
		rows := []window.Row{{TimeNs: 1}, {TimeNs: 2}, {TimeNs: 3}, {TimeNs: 3}} // one row not after its predecessor
		rs = append(rs, window.Result{Pipeline: "appliance_sessions", Key: window.Key{Device: "dev" + string(rune('0'+d))},
			Names: []string{"readings", "state_readings", "state_merged"}, Values: []float64{4, 20, 18}, Rows: rows})
	}
	rs = append(rs, window.Result{Pipeline: "power_1m", Key: window.Key{Device: "devx"}, Rows: []window.Row{{TimeNs: 1}}},
		window.Result{Pipeline: "appliance_sessions", Key: window.Key{Device: "dev0"}, Provisional: true, Rows: []window.Row{{TimeNs: 9}, {TimeNs: 1}}})
	q.Observe(rs)
	reg := prometheus.NewRegistry()
	reg.MustRegister(q)
	if n := testutil.CollectAndCount(q, "gridedge_dataset_device_time_order_ratio"); n != 4 {
		t.Fatalf("%d per-device time-order series, want 3 devices + _other", n)
	}
	want := `
# HELP gridedge_dataset_device_merged_ratio Share of a device's state readings merged into the join since start (first devices seen; the rest as device="_other").
# TYPE gridedge_dataset_device_merged_ratio gauge
gridedge_dataset_device_merged_ratio{device="_other",pipeline="appliance_sessions"} 0.9
gridedge_dataset_device_merged_ratio{device="dev0",pipeline="appliance_sessions"} 0.9
gridedge_dataset_device_merged_ratio{device="dev1",pipeline="appliance_sessions"} 0.9
gridedge_dataset_device_merged_ratio{device="dev2",pipeline="appliance_sessions"} 0.9
# HELP gridedge_dataset_device_time_order_ratio Share of a device's dataset rows in event-time order since start (first devices seen; the rest as device="_other").
# TYPE gridedge_dataset_device_time_order_ratio gauge
gridedge_dataset_device_time_order_ratio{device="_other",pipeline="appliance_sessions"} 0.75
gridedge_dataset_device_time_order_ratio{device="dev0",pipeline="appliance_sessions"} 0.75
gridedge_dataset_device_time_order_ratio{device="dev1",pipeline="appliance_sessions"} 0.75
gridedge_dataset_device_time_order_ratio{device="dev2",pipeline="appliance_sessions"} 0.75
# HELP gridedge_dataset_results_total Final dataset results measured (re-fires count again).
# TYPE gridedge_dataset_results_total counter
gridedge_dataset_results_total{pipeline="appliance_sessions"} 10
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gridedge_dataset_device_merged_ratio",
		"gridedge_dataset_device_time_order_ratio", "gridedge_dataset_results_total"); err != nil {
		t.Fatal(err)
	}
}
