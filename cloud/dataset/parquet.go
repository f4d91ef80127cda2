package dataset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
)

// ParquetRowGroupRows bounds a Parquet row group: the writer holds at most
// this many rows in memory before it writes them out (a few MB for the
// shipped datasets' columns).
const ParquetRowGroupRows = 16 << 10

// columnsKey is the Parquet metadata key holding the value columns in
// order (Parquet's schema orders columns by name).
const (
	columnsKey   = "gridedge.columns"
	truncatedKey = "gridedge.truncated"
)

type parquetWriter struct {
	pw   *parquet.Writer
	idx  []int // column index of each of fixedColumns, then of each value column
	row  parquet.Row
	cols int
}

func parquetSchema(spec Spec) *parquet.Schema {
	ts := parquet.Timestamp(parquet.Nanosecond)
	g := parquet.Group{
		"device": parquet.String(), "channel": parquet.String(), "quantity": parquet.String(),
		"window_start": ts, "window_end": ts, "revision": parquet.Int(64), "time": ts,
	}
	for _, c := range spec.Columns {
		g[c] = parquet.Leaf(parquet.DoubleType)
	}
	return parquet.NewSchema("dataset_"+spec.Pipeline, g)
}

func newParquet(out io.Writer, spec Spec) (Writer, error) {
	if len(spec.Columns) == 0 {
		return nil, errors.New("dataset: no value columns")
	}
	for _, c := range spec.Columns {
		if strings.Contains(c, ",") {
			return nil, fmt.Errorf("dataset: column %q has a comma", c)
		}
	}
	schema := parquetSchema(spec)
	w := &parquetWriter{cols: len(spec.Columns)}
	for _, name := range spec.Header() {
		leaf, ok := schema.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("dataset: column %q missing from the schema", name)
		}
		w.idx = append(w.idx, leaf.ColumnIndex)
	}
	w.row = make(parquet.Row, len(w.idx))
	w.pw = parquet.NewWriter(out, schema,
		parquet.MaxRowsPerRowGroup(ParquetRowGroupRows),
		parquet.Compression(&parquet.Snappy),
		parquet.KeyValueMetadata(columnsKey, strings.Join(spec.Columns, ",")),
		parquet.CreatedBy("gridedge", "", ""))
	return w, nil
}

func (w *parquetWriter) Write(r *Row) error {
	if len(r.Values) != w.cols {
		return fmt.Errorf("dataset: row of %d values, want %d", len(r.Values), w.cols)
	}
	set := func(i int, v parquet.Value) { w.row[w.idx[i]] = v.Level(0, 0, w.idx[i]) }
	set(0, parquet.ByteArrayValue([]byte(r.Device)))
	set(1, parquet.ByteArrayValue([]byte(r.Channel)))
	set(2, parquet.ByteArrayValue([]byte(r.Quantity)))
	set(3, parquet.Int64Value(r.WindowStart.UnixNano()))
	set(4, parquet.Int64Value(r.WindowEnd.UnixNano()))
	set(5, parquet.Int64Value(int64(r.Revision)))
	set(6, parquet.Int64Value(r.Time.UnixNano()))
	for i, v := range r.Values {
		set(len(fixedColumns)+i, parquet.DoubleValue(v))
	}
	if _, err := w.pw.WriteRows([]parquet.Row{w.row}); err != nil {
		return fmt.Errorf("dataset: parquet: %w", err)
	}
	return nil
}

func (w *parquetWriter) Close(truncated bool) error {
	if truncated {
		w.pw.SetKeyValueMetadata(truncatedKey, "true")
	}
	if err := w.pw.Close(); err != nil {
		return fmt.Errorf("dataset: parquet: %w", err)
	}
	return nil
}

// ReadParquet reads a dataset written as Parquet, calling fn for every row
// in file order (the Row is reused between calls), and returns its value
// columns and whether the file says it was truncated at a limit. A corrupt
// file is an error (a panic of the Parquet decoder on it included).
//
// Read only files you trust, such as the exports of GET /api/v1/datasets:
// the Parquet decoder (parquet-go) sizes its allocations from lengths
// declared in the file's metadata, so a crafted file of a few hundred bytes
// can make it allocate gigabytes. ReadParquet refuses a footer longer than
// the file (checkFrame), but not a list length inside the footer. The
// collector never reads Parquet; it only writes it.
func ReadParquet(in io.ReaderAt, size int64, fn func(*Row) error) (cols []string, truncated bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("dataset: parquet: corrupt file: %v", p)
		}
	}()
	if err := checkFrame(in, size); err != nil {
		return nil, false, err
	}
	f, err := parquet.OpenFile(in, size)
	if err != nil {
		return nil, false, fmt.Errorf("dataset: parquet: %w", err)
	}
	spec, ok := f.Lookup(columnsKey)
	if !ok || spec == "" {
		return nil, false, fmt.Errorf("dataset: parquet: no %s metadata: not a dataset file", columnsKey)
	}
	cols = strings.Split(spec, ",")
	t, _ := f.Lookup(truncatedKey)
	truncated = t == "true"
	s := Spec{Columns: cols}
	idx := make([]int, 0, len(fixedColumns)+len(cols))
	for _, name := range s.Header() {
		leaf, ok := f.Schema().Lookup(name)
		if !ok {
			return cols, truncated, fmt.Errorf("dataset: parquet: column %q missing", name)
		}
		idx = append(idx, leaf.ColumnIndex)
	}
	if len(f.Schema().Columns()) != len(idx) {
		return cols, truncated, fmt.Errorf("dataset: parquet: %d columns, want %d", len(f.Schema().Columns()), len(idx))
	}
	row := Row{Values: make([]float64, len(cols))}
	buf := make([]parquet.Row, 256)
	for _, rg := range f.RowGroups() {
		rows := rg.Rows()
		err := readGroup(rows, buf, idx, &row, fn)
		rows.Close()
		if err != nil {
			return cols, truncated, err
		}
	}
	return cols, truncated, nil
}

func readGroup(rows parquet.Rows, buf []parquet.Row, idx []int, row *Row, fn func(*Row) error) error {
	for {
		n, err := rows.ReadRows(buf)
		for _, pr := range buf[:n] {
			if err := parquetRow(pr, idx, row); err != nil {
				return err
			}
			if err := fn(row); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("dataset: parquet: %w", err)
		}
	}
}

func parquetRow(pr parquet.Row, idx []int, row *Row) error {
	byCol := func(i int) (parquet.Value, error) {
		c := idx[i]
		if c >= len(pr) || pr[c].IsNull() {
			return parquet.Value{}, fmt.Errorf("dataset: parquet: row without column %d", c)
		}
		return pr[c], nil
	}
	var vs [7]parquet.Value
	for i := range vs {
		v, err := byCol(i)
		if err != nil {
			return err
		}
		vs[i] = v
	}
	row.Device, row.Channel, row.Quantity = string(vs[0].ByteArray()), string(vs[1].ByteArray()), string(vs[2].ByteArray())
	row.WindowStart, row.WindowEnd = time.Unix(0, vs[3].Int64()).UTC(), time.Unix(0, vs[4].Int64()).UTC()
	row.Revision = uint32(vs[5].Int64())
	row.Time = time.Unix(0, vs[6].Int64()).UTC()
	for i := range row.Values {
		v, err := byCol(len(fixedColumns) + i)
		if err != nil {
			return err
		}
		row.Values[i] = v.Double()
	}
	return nil
}

// checkFrame checks a Parquet file's frame — "PAR1", ..., footer, footer
// length (4 bytes, little endian), "PAR1" — before the decoder reads it:
// the decoder allocates the footer length it reads, up to 4 GiB, before
// comparing it with the file's size.
func checkFrame(in io.ReaderAt, size int64) error {
	const magic = "PAR1"
	if size < 12 {
		return fmt.Errorf("dataset: parquet: %d bytes is not a Parquet file", size)
	}
	var head, tail [4]byte
	var foot [8]byte
	if _, err := in.ReadAt(head[:], 0); err != nil {
		return fmt.Errorf("dataset: parquet: %w", err)
	}
	if _, err := in.ReadAt(foot[:], size-8); err != nil {
		return fmt.Errorf("dataset: parquet: %w", err)
	}
	copy(tail[:], foot[4:])
	if string(head[:]) != magic || string(tail[:]) != magic {
		return errors.New("dataset: parquet: no PAR1 frame: not a Parquet file")
	}
	if n := int64(binary.LittleEndian.Uint32(foot[:4])); n > size-12 {
		return fmt.Errorf("dataset: parquet: footer of %d bytes in a file of %d", n, size)
	}
	return nil
}
