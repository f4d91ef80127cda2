package agent

import (
	"fmt"
	"time"
)

// publisherStall is how long the send loop may go without a round before
// the agent counts as unhealthy. The loop sleeps while it has nothing to do
// (then it is not stuck) but can spend up to 10 s per publish on a hung
// connection, for a few batches.
const publisherStall = 2 * time.Minute

// Healthy reports whether every part of the pipeline is making progress:
// each sampler has gone round within three of its intervals (plus the Sense
// timeout) and the publisher's send loop within publisherStall. It is the
// systemd watchdog's test: an agent that returns an error here stops
// getting keep-alives and is restarted.
func (a *Agent) Healthy() error { return a.healthyAt(time.Now()) }

func (a *Agent) healthyAt(now time.Time) error {
	for _, ch := range a.channels {
		if ch.done.Load() {
			continue
		}
		beat := ch.beat.Load()
		if beat == 0 {
			continue // not started yet
		}
		limit := 3*ch.interval + max(ch.interval, time.Second) + 5*time.Second
		if age := now.Sub(time.Unix(0, beat)); age > limit {
			return fmt.Errorf("channel %s: sampler stuck for %v", ch.cfg.Channel, age.Round(time.Second))
		}
	}
	if hb := a.pub.Heartbeat(); !hb.IsZero() && now.Sub(hb) > publisherStall {
		return fmt.Errorf("publisher stuck for %v", now.Sub(hb).Round(time.Second))
	}
	return nil
}
