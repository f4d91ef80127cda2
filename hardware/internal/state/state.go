package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/gridedge/gridedge/shared/atomicfile"
)

// Save writes v as JSON to path atomically: it writes a temporary file in
// the same directory, fsyncs it, renames it over path and fsyncs the
// directory, so after a power cut path holds either the old or the new
// content.
func Save(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("state %s: encode: %w", path, err)
	}
	if err := atomicfile.Write(path, append(data, '\n')); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// Load decodes the JSON at path into v. A missing file is not an error:
// found is false and v is untouched. A file that does not decode is an
// error, so a damaged counter is reported rather than silently restarted
// from zero.
func Load(path string, v any) (found bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("state %s: %w", path, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("state %s: decode: %w", path, err)
	}
	return true, nil
}
