package clock_test

import (
	"fmt"
	"time"

	"github.com/gridedge/gridedge/edge/clock"
	"github.com/gridedge/gridedge/edge/clock/clocktest"
)

// A gateway boots with its clock at 1970, takes a reading, and NTP syncs a
// minute later: the reading is re-stamped from the offset learned at sync.
func Example() {
	k := clocktest.NewKernel("boot-1", 5*time.Second, time.Unix(5, 0))
	sys, err := clock.NewSystem(clock.WithKernel(k), clock.WithLogger(quiet()))
	if err != nil {
		panic(err)
	}
	reading := sys.Now()
	fmt.Println(reading.Quality.Name(), time.Unix(0, reading.WallNs).UTC().Format(time.RFC3339))

	k.Advance(time.Minute)
	k.SyncTo(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), 10*time.Millisecond)
	fixed := sys.Correct(reading)
	fmt.Println(fixed.Quality.Name(), time.Unix(0, fixed.WallNs).UTC().Format(time.RFC3339), time.Duration(fixed.ErrorNs))
	// Output:
	// estimated 1970-01-01T00:00:05Z
	// corrected 2026-11-23T11:59:00Z 10ms
}
