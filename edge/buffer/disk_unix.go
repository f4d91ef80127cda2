//go:build unix

package buffer

import (
	"io/fs"
	"syscall"
)

// diskUsage is the space a file really occupies: Badger preallocates and
// mmaps value-log files, whose apparent size overstates it.
func diskUsage(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512
	}
	return info.Size()
}
