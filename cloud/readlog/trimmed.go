package readlog

import "fmt"

// TrimmedError is the ErrTrimmed every implementation returns: the offset a
// reader asked for and the first offset still available. A consumer that gets
// it re-opens at Available and counts Available-Requested records lost.
type TrimmedError struct {
	Partition int
	Requested int64
	Available int64
}

func (e *TrimmedError) Error() string {
	return fmt.Sprintf("readlog: partition %d: offset %d trimmed, data available from %d", e.Partition, e.Requested, e.Available)
}

// Is makes errors.Is(err, ErrTrimmed) true.
func (e *TrimmedError) Is(target error) bool { return target == ErrTrimmed }
