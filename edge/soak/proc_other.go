//go:build !linux

package soak

import (
	"errors"
	"os"
)

// processUsage needs Linux's /proc.
func processUsage(string) (ProcessUsage, error) {
	return ProcessUsage{}, errors.New("soak: process usage needs /proc (Linux)")
}

func allocated(info os.FileInfo) int64 { return info.Size() }
