package e2e

import (
	"bytes"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/gridedge/gridedge/edge/sim"
	"github.com/gridedge/gridedge/shared/mqtttest"
)

// TestRampWithJitterReversedPairsAndFaults: a fleet ramped up to a few
// hundred meters, publishing with delay jitter, an occasional pair of
// readings in reverse order, and seeded faults (meters offline for a
// while, booting without a clock, losing their connection), through
// Mosquitto to the collector binary: every reading the simulator generated
// is stored once, and the windowing engine's results equal an
// uninterrupted pass over the truth file.
func TestRampWithJitterReversedPairsAndFaults(t *testing.T) {
	broker := mqtttest.Start(t)
	c := startCollector(t, broker.URL(), t.TempDir(), "-zone-grace", "30s")

	faults, err := sim.ParseFaults("offline:4%:2m,clockless:3%:3m,drop:5%")
	if err != nil {
		t.Fatal(err)
	}
	jitter, err := sim.ParseJitter("200ms..600ms+1ms..100ms")
	if err != nil {
		t.Fatal(err)
	}
	var truth bytes.Buffer
	res, err := sim.Run(withTimeout(t, 4*time.Minute), sim.Config{
		MQTTURL: broker.URL(), Site: "fleet", Meters: 200, Buffer: sim.BufferMemory,
		Start: time.Date(2026, 4, 6, 17, 0, 0, 0, time.UTC), Duration: 8 * time.Minute, Interval: 10 * time.Second,
		Speed: 60, // 8 real seconds of sampling
		Ramp:  sim.Ramp{Step: 50, Every: time.Second}, Jitter: jitter, ReversedPairs: 0.03, Faults: faults,
		States: true, Seed: 11, DataDir: t.TempDir(), Truth: &truth,
		AckTimeout: 3 * time.Second, DrainTimeout: 2 * time.Minute,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		t.Fatalf("simulator: %v (unacked %d)", err, res.Unacked)
	}
	readings := parseTruth(t, truth.Bytes())
	if uint64(len(readings)) != res.Generated || len(res.Meters) != 200 {
		t.Fatalf("truth file has %d readings for %d meters, simulator reports %d generated", len(readings), len(res.Meters), res.Generated)
	}
	// The faults and the reversed pairs happened: resends after drops and
	// outages, readings whose time order differs from their sequence order.
	var resent uint64
	for _, m := range res.Meters {
		resent += m.Resent
	}
	reversed := 0
	last := map[[2]string]truthReading{}
	for _, r := range readings {
		k := [2]string{r.device, r.channel + "/" + r.quantity}
		if p, ok := last[k]; ok && p.seq < r.seq && r.time.Before(p.time) {
			reversed++
		}
		last[k] = r
	}
	if reversed == 0 {
		t.Fatal("no reading came after a later one: the reversed pairs did not happen")
	}
	t.Logf("%d readings of %d meters, %d resent, %d reversed pairs", len(readings), len(res.Meters), resent, reversed)
	checkStoredOnce(t, c, readings)
	checkEngineResults(t, c, readings)
}

// checkStoredOnce compares every device's stored reading count with the
// truth file (the collector deduplicates, so a count equal to the truth's
// means each reading is stored once).
func checkStoredOnce(t *testing.T, c *collectorProc, truth []truthReading) {
	t.Helper()
	perDevice := map[string]uint64{}
	for _, r := range truth {
		perDevice[r.device]++
	}
	var devs struct {
		Devices []struct {
			ID             string `json:"id"`
			ReadingsStored uint64 `json:"readings_stored"`
		} `json:"devices"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.getJSON("/api/v1/devices", nil, &devs)
		bad := 0
		for _, d := range devs.Devices {
			if d.ReadingsStored != perDevice[d.ID] {
				bad++
			}
		}
		if bad == 0 && len(devs.Devices) == len(perDevice) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d devices store a count different from the truth (collector lists %d devices)", bad, len(perDevice), len(devs.Devices))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
