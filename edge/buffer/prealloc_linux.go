//go:build linux

package buffer

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// allocate reserves disk blocks for the first size bytes of f without
// changing its contents or size. File systems without fallocate are left
// as they are.
func allocate(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return nil
	}
	return err
}
