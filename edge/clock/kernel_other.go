//go:build !linux

package clock

import (
	"errors"
	"runtime"
)

func defaultKernel() (Kernel, error) {
	return nil, errors.New("clock: no kernel clock support on " + runtime.GOOS + "; pass WithKernel")
}
