package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
)

// field is one top-level member of a streamed JSON object.
type field struct {
	name  string
	value any
}

// errStop ends an iteration early without an error (a limit was reached).
var errStop = errors.New("stop")

// streamArray answers 200 with one JSON object: the head fields, then the
// member array with the elements each passes to emit — each marshalled and
// written through a 32 KiB buffer, never the whole list in memory — then
// the fields tail returns. An error after the first byte cannot change the
// status any more: it ends the object with an "error" member instead (and
// is logged by the caller).
func streamArray(w http.ResponseWriter, head []field, array string, each func(emit func(v any) error) error, tail func() []field) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	var werr error
	write := func(b []byte) {
		if werr == nil {
			_, werr = bw.Write(b)
		}
	}
	member := func(name string, v any) {
		k, _ := json.Marshal(name)
		write(k)
		write([]byte{':'})
		b, err := json.Marshal(v)
		if err != nil {
			b, _ = json.Marshal(err.Error())
		}
		write(b)
	}
	write([]byte{'{'})
	for _, f := range head {
		member(f.name, f.value)
		write([]byte{','})
	}
	k, _ := json.Marshal(array)
	write(k)
	write([]byte(":[\n"))
	n := 0
	err := each(func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if n > 0 {
			write([]byte(",\n"))
		}
		n++
		write(b)
		return werr // a client that went away stops the scan
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	write([]byte("\n]"))
	if tail != nil {
		for _, f := range tail() {
			write([]byte{','})
			member(f.name, f.value)
		}
	}
	if err != nil && werr == nil {
		write([]byte{','})
		member("error", err.Error())
	}
	write([]byte("}\n"))
	if werr == nil {
		werr = bw.Flush()
	}
	if err == nil && werr != nil {
		err = werr
	}
	return err
}
