package dataset

import (
	"io"
	"slices"
)

// Writer writes the rows of one dataset to an output as they come: nothing
// but a bounded buffer is held between Write calls.
type Writer interface {
	// Write appends one row; its Values must have one value per column.
	Write(*Row) error
	// Close flushes what is buffered and ends the file. truncated says the
	// rows stopped at a limit before the end of the query (Parquet records
	// it in the file's metadata as gridedge.truncated=true).
	Close(truncated bool) error
}

// Format is one output format of datasets.
type Format struct {
	Name        string // the format= parameter
	ContentType string
	Extension   string
	New         func(out io.Writer, spec Spec) (Writer, error)
}

// Formats lists the formats, the default first.
func Formats() []Format {
	return []Format{
		{Name: "csv", ContentType: "text/csv; charset=utf-8", Extension: "csv", New: newCSV},
		{Name: "parquet", ContentType: "application/vnd.apache.parquet", Extension: "parquet", New: newParquet},
	}
}

// LookupFormat returns the format called name.
func LookupFormat(name string) (Format, bool) {
	fs := Formats()
	i := slices.IndexFunc(fs, func(f Format) bool { return f.Name == name })
	if i < 0 {
		return Format{}, false
	}
	return fs[i], true
}

// FormatNames lists the formats' names.
func FormatNames() []string {
	var out []string
	for _, f := range Formats() {
		out = append(out, f.Name)
	}
	return out
}
