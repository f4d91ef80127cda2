package dataset

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
)

// CSV layout: a header line (Spec.Header), then one line per row; times
// are RFC 3339 with nanoseconds in UTC, values Go's shortest exact
// decimal (strconv 'g', -1), so a value read back is the same float64.
type csvWriter struct {
	bw   *bufio.Writer
	cw   *csv.Writer
	rec  []string
	cols int
}

func newCSV(out io.Writer, spec Spec) (Writer, error) {
	if len(spec.Columns) == 0 {
		return nil, errors.New("dataset: no value columns")
	}
	bw := bufio.NewWriterSize(out, 32<<10)
	w := &csvWriter{bw: bw, cw: csv.NewWriter(bw), cols: len(spec.Columns)}
	if err := w.cw.Write(spec.Header()); err != nil {
		return nil, fmt.Errorf("dataset: csv header: %w", err)
	}
	w.rec = make([]string, len(fixedColumns)+w.cols)
	return w, nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func (w *csvWriter) Write(r *Row) error {
	if len(r.Values) != w.cols {
		return fmt.Errorf("dataset: row of %d values, want %d", len(r.Values), w.cols)
	}
	w.rec = append(w.rec[:0], r.Device, r.Channel, r.Quantity, formatTime(r.WindowStart), formatTime(r.WindowEnd),
		strconv.FormatUint(uint64(r.Revision), 10), formatTime(r.Time))
	for _, v := range r.Values {
		w.rec = append(w.rec, strconv.FormatFloat(v, 'g', -1, 64))
	}
	// csv.Writer writes into bw, which flushes to the output every 32 KiB.
	if err := w.cw.Write(w.rec); err != nil {
		return fmt.Errorf("dataset: csv: %w", err)
	}
	return nil
}

func (w *csvWriter) Close(bool) error {
	w.cw.Flush()
	if err := w.cw.Error(); err != nil {
		return fmt.Errorf("dataset: csv: %w", err)
	}
	return w.bw.Flush()
}

// ReadCSV reads a dataset written as CSV, calling fn for every row (the
// Row is reused between calls), and returns its value columns. Errors name
// the line and the column; nothing is read past the first error.
func ReadCSV(in io.Reader, fn func(*Row) error) ([]string, error) {
	cr := csv.NewReader(in)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("dataset: csv header: %w", err)
	}
	nf := len(fixedColumns)
	if len(head) <= nf || !slices.Equal(head[:nf], fixedColumns) {
		return nil, fmt.Errorf("dataset: csv header %q: want %q followed by value columns", head, fixedColumns)
	}
	cols := slices.Clone(head[nf:])
	cr.FieldsPerRecord = len(head)
	row := Row{Values: make([]float64, len(cols))}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return cols, nil
		}
		if err != nil {
			return cols, fmt.Errorf("dataset: csv: %w", err)
		}
		if err := parseCSVRow(rec, &row); err != nil {
			return cols, fmt.Errorf("dataset: csv line %d: %w", line, err)
		}
		if err := fn(&row); err != nil {
			return cols, err
		}
	}
}

func parseCSVRow(rec []string, row *Row) error {
	row.Device, row.Channel, row.Quantity = rec[0], rec[1], rec[2]
	var err error
	times := []*time.Time{&row.WindowStart, &row.WindowEnd, nil, &row.Time}
	for i, dst := range times {
		if dst == nil {
			continue
		}
		if *dst, err = time.Parse(time.RFC3339Nano, rec[3+i]); err != nil {
			return fmt.Errorf("column %s: %q is not an RFC 3339 time", fixedColumns[3+i], rec[3+i])
		}
	}
	rev, err := strconv.ParseUint(rec[5], 10, 32)
	if err != nil {
		return fmt.Errorf("column revision: %q is not a revision number", rec[5])
	}
	row.Revision = uint32(rev)
	for i, s := range rec[len(fixedColumns):] {
		if row.Values[i], err = strconv.ParseFloat(s, 64); err != nil {
			return fmt.Errorf("value column %d: %q is not a number", i+1, s)
		}
	}
	return nil
}
