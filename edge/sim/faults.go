package sim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FaultKind names a fault a virtual meter can suffer.
type FaultKind string

const (
	// FaultOffline: the meter's network is down for For (simulated time):
	// its connection is cut and every reconnect fails; it keeps sampling
	// into its buffer and replays the backlog when the network returns.
	FaultOffline FaultKind = "offline"
	// FaultDrop: the meter's broker connection is cut once; it reconnects
	// at once (with the agent's backoff) and resends what was not acked.
	FaultDrop FaultKind = "drop"
	// FaultClockless: the meter boots without a valid clock and without
	// network for For: its readings are stamped from a wall clock near
	// 1970 (quality estimated) until its clock syncs, when the agent
	// re-stamps them (monotonic time + the offset learned at sync,
	// quality corrected) before sending anything.
	FaultClockless FaultKind = "clockless"
)

// Fault is one fault injected into one meter (Device) or into a share of
// the meters chosen at random with the run's seed (Share).
type Fault struct {
	Kind FaultKind
	// Device names the meter (a scheduled fault); empty when Share is set.
	Device string
	// Share in (0, 1] is the fraction of meters that suffer the fault once,
	// at a random moment of their run.
	Share float64
	// At is when a scheduled offline or drop fault starts, in simulated
	// time since the meter started (ignored for clockless: at boot).
	At time.Duration
	// For is how long an offline or clockless fault lasts (simulated).
	For time.Duration
}

func (f Fault) validate() error {
	switch f.Kind {
	case FaultOffline, FaultClockless:
		if f.For <= 0 {
			return fmt.Errorf("%s: duration must be > 0", f.Kind)
		}
	case FaultDrop:
		if f.For != 0 {
			return errors.New("drop: takes no duration")
		}
	default:
		return fmt.Errorf("kind %q unknown (offline, drop or clockless)", f.Kind)
	}
	if (f.Device == "") == (f.Share == 0) {
		return fmt.Errorf("%s: name one device or a share of the meters, not both or neither", f.Kind)
	}
	if f.Device == "" && !(f.Share > 0 && f.Share <= 1) {
		return fmt.Errorf("%s: share must be in (0, 100%%], got %v", f.Kind, f.Share)
	}
	if f.At < 0 {
		return fmt.Errorf("%s: start must be >= 0", f.Kind)
	}
	return nil
}

func (f Fault) String() string {
	who := f.Device
	if who == "" {
		who = strconv.FormatFloat(f.Share*100, 'g', -1, 64) + "%"
	} else if f.Kind != FaultClockless {
		who += "@" + f.At.String()
	}
	if f.For > 0 {
		return fmt.Sprintf("%s:%s:%s", f.Kind, who, f.For)
	}
	return fmt.Sprintf("%s:%s", f.Kind, who)
}

// ParseFaults reads a comma-separated list of KIND:WHO[:DURATION], where
// WHO is a share of the meters ("5%") or one device, with its start for
// offline and drop ("sim-0007@10m"). Examples:
//
//	offline:5%:2m,drop:10%,clockless:2%:3m
//	offline:sim-0007@10m:5m,drop:sim-0003@90s,clockless:sim-0002:3m
func ParseFaults(s string) ([]Fault, error) {
	if s == "" {
		return nil, nil
	}
	var out []Fault
	for _, item := range strings.Split(s, ",") {
		parts := strings.Split(item, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return nil, fmt.Errorf("fault %q: want KIND:WHO[:DURATION], e.g. offline:5%%:2m", item)
		}
		f := Fault{Kind: FaultKind(parts[0])}
		if share, ok := strings.CutSuffix(parts[1], "%"); ok {
			p, err := strconv.ParseFloat(share, 64)
			if err != nil {
				return nil, fmt.Errorf("fault %q: share %q is not a percentage", item, parts[1])
			}
			f.Share = p / 100
		} else {
			dev, at, hasAt := strings.Cut(parts[1], "@")
			f.Device = dev
			if hasAt {
				d, err := time.ParseDuration(at)
				if err != nil {
					return nil, fmt.Errorf("fault %q: start %q: %v", item, at, err)
				}
				f.At = d
			} else if f.Kind != FaultClockless {
				return nil, fmt.Errorf("fault %q: say when, e.g. %s@10m", item, dev)
			}
		}
		if len(parts) == 3 {
			d, err := time.ParseDuration(parts[2])
			if err != nil {
				return nil, fmt.Errorf("fault %q: duration %q: %v", item, parts[2], err)
			}
			f.For = d
		}
		if err := f.validate(); err != nil {
			return nil, fmt.Errorf("fault %q: %w", item, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// span is a stretch of simulated time since the run's start.
type span struct{ from, to time.Duration }

// meterFaults is what one meter suffers, in simulated time since the run's
// start.
type meterFaults struct {
	down   []span          // network down (offline, and clockless boots)
	drops  []time.Duration // connection cut
	syncAt time.Duration   // clock syncs (clockless boot); 0: synced from boot
}

// planFaults decides meter's faults. born is when the meter starts and end
// when sampling ends (simulated, since the run's start).
func planFaults(faults []Fault, seed int64, meter int, device string, born, end time.Duration) meterFaults {
	var mf meterFaults
	for i, f := range faults {
		at := born + f.At
		if f.Device == "" {
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(meter)<<16|uint64(i)))
			if rng.Float64() >= f.Share {
				continue
			}
			room := end - born - f.For
			if f.Kind == FaultClockless || room <= 0 {
				at = born
			} else {
				at = born + time.Duration(rng.Int64N(int64(room)))
			}
		} else if f.Device != device {
			continue
		}
		switch f.Kind {
		case FaultOffline:
			mf.down = append(mf.down, span{at, at + f.For})
		case FaultDrop:
			mf.drops = append(mf.drops, at)
		case FaultClockless:
			mf.syncAt = max(mf.syncAt, born+f.For)
			mf.down = append(mf.down, span{born, born + f.For})
		}
	}
	return mf
}

func (mf meterFaults) isDown(at time.Duration) bool {
	for _, s := range mf.down {
		if at >= s.from && at < s.to {
			return true
		}
	}
	return false
}

// faultEvent cuts a meter's connection at a moment of simulated time.
type faultEvent struct {
	at   time.Duration
	link *link
}

// runFaults cuts connections at their moments until ctx ends: one goroutine
// for the whole fleet.
func runFaults(ctx context.Context, clk *Clock, events []faultEvent) {
	slices.SortFunc(events, func(a, b faultEvent) int { return cmp.Compare(a.at, b.at) })
	for _, ev := range events {
		for {
			ahead := ev.at - clk.Elapsed()
			if ahead <= 0 {
				break
			}
			t := time.NewTimer(max(time.Duration(float64(ahead)/clk.speed), time.Millisecond))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		ev.link.cut()
	}
}
