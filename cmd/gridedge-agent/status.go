package main

import (
	"fmt"
	"io"
)

func status(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "status: not implemented yet")
	return 2
}
