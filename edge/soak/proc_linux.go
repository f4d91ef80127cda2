package soak

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// processUsage reads the process's open files, mappings and memory from
// /proc/self. Under qemu-user, maps is the guest's view (qemu filters it),
// while fd and status describe the qemu process itself: its own few
// descriptors and the translator's memory are included.
func processUsage(dir string) (ProcessUsage, error) {
	var u ProcessUsage
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return u, fmt.Errorf("soak: list open files: %w", err)
	}
	for _, fd := range fds {
		u.OpenFiles++
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && within(dir, target) {
			u.OpenFilesInDir++
		}
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return u, fmt.Errorf("soak: read mappings: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(maps))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		size, path, ok := parseMapsLine(sc.Text())
		if !ok {
			continue
		}
		u.MappedBytes += size
		if path != "" && within(dir, path) {
			u.MappedInDir += size
		}
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return u, fmt.Errorf("soak: read status: %w", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			u.RSS = kB(line)
		case strings.HasPrefix(line, "VmHWM:"):
			u.HWM = kB(line)
		}
	}
	return u, nil
}

// parseMapsLine returns the size and backing path of one /proc/self/maps
// line: "start-end perms offset dev inode [path]".
func parseMapsLine(line string) (size int64, path string, ok bool) {
	fields := strings.Fields(line)
	if len(fields) < 5 {
		return 0, "", false
	}
	lo, hi, found := strings.Cut(fields[0], "-")
	if !found {
		return 0, "", false
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || end < start {
		return 0, "", false
	}
	if len(fields) >= 6 {
		path = strings.Join(fields[5:], " ")
	}
	return int64(end - start), path, true
}

func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// kB parses a /proc status line such as "VmRSS:	  12345 kB" into bytes.
func kB(line string) int64 {
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return 0
	}
	n, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return 0
	}
	return n << 10
}

// allocated is the disk space a file occupies (sparse files and
// preallocation make it differ from the size).
func allocated(info os.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512
	}
	return info.Size()
}
