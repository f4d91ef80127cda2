//go:build !unix

package buffer

import "io/fs"

func diskUsage(info fs.FileInfo) int64 { return info.Size() }
