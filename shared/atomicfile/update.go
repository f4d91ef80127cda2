package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Update rewrites path under an exclusive advisory lock on path+".lock"
// (concurrent updaters do not lose each other's changes) and atomically
// (Write: a reader never sees a torn file). change gets the current content
// (nil when the file does not exist yet) and returns the new one; its error
// leaves the file as it was. Missing parent directories are created (0750).
func Update(path string, change func(old []byte) ([]byte, error)) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	defer unlock()
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	data, err := change(old)
	if err != nil {
		return err
	}
	return Write(path, data)
}
