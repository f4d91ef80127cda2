//go:build unix

package diskfree

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Available is the space unprivileged writers may still use on the file
// system holding dir (statfs f_bavail × f_bsize).
func Available(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("diskfree: statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
