package e2e

import (
	"bytes"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gridedge/gridedge/edge/sim"
	"github.com/gridedge/gridedge/shared/mqtttest"
)

// simConfig is one simulated hour of 20 household meters at high speed.
func simConfig(brokerURL, dataDir string, truth *bytes.Buffer) sim.Config {
	return sim.Config{
		MQTTURL:      brokerURL,
		Site:         "e2e",
		Meters:       20,
		Profile:      sim.ProfileHousehold,
		Duration:     time.Hour,
		Interval:     10 * time.Second,
		Speed:        360, // one simulated hour in ten seconds
		Seed:         7,
		DataDir:      dataDir,
		Truth:        truth,
		AckTimeout:   3 * time.Second,
		DrainTimeout: 3 * time.Minute,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// TestTwentyMetersOneHourExactlyOnce: every reading the simulator generates
// is stored exactly once, every one-minute window equals a direct
// computation over the truth file, and the windowing engine's results equal
// an uninterrupted pass over it.
func TestTwentyMetersOneHourExactlyOnce(t *testing.T) {
	broker := mqtttest.Start(t)
	c := startCollector(t, broker.URL(), t.TempDir())

	var truth bytes.Buffer
	res, err := sim.Run(withTimeout(t, 5*time.Minute), simConfig(broker.URL(), t.TempDir(), &truth))
	if err != nil {
		t.Fatalf("simulator: %v (unacked %d)", err, res.Unacked)
	}
	readings := parseTruth(t, truth.Bytes())
	if uint64(len(readings)) != res.Generated {
		t.Fatalf("truth file has %d readings, simulator reports %d generated", len(readings), res.Generated)
	}
	// 20 meters × 360 samples × at least 4 channels.
	if len(readings) < 20*360*4 {
		t.Fatalf("only %d readings generated for 20 meters over an hour at 10 s", len(readings))
	}
	checkExactlyOnce(t, c, readings)
	checkEngineResults(t, c, readings)
}

// TestBrokerAndCollectorKilledMidRun: the broker is SIGKILLed for several
// seconds and restarted, then the collector is SIGKILLed and restarted on
// the same store; the agents buffer, resend and the collector deduplicates,
// so the result is still exactly once — in the stored readings, the
// foundation windows and the engine's results (restored from its
// checkpoint and the ingest log after the SIGKILL).
func TestBrokerAndCollectorKilledMidRun(t *testing.T) {
	broker := mqtttest.Start(t)
	c := startCollector(t, broker.URL(), t.TempDir())

	var truth bytes.Buffer
	cfg := simConfig(broker.URL(), t.TempDir(), &truth)
	cfg.Speed = 180 // twenty real seconds, so both outages fall inside sampling

	var (
		wg     sync.WaitGroup
		res    sim.Result
		simErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		res, simErr = sim.Run(withTimeout(t, 6*time.Minute), cfg)
	}()

	time.Sleep(4 * time.Second)
	broker.Kill()
	time.Sleep(4 * time.Second) // agents keep sampling into their buffers
	broker.Restart()

	time.Sleep(4 * time.Second)
	c.kill()
	time.Sleep(2 * time.Second)
	c.start()

	wg.Wait()
	if simErr != nil {
		t.Fatalf("simulator: %v (unacked %d)", simErr, res.Unacked)
	}
	var resent uint64
	for _, m := range res.Meters {
		resent += m.Resent
	}
	t.Logf("generated %d readings, %d resent after the outages", res.Generated, resent)
	readings := parseTruth(t, truth.Bytes())
	if uint64(len(readings)) != res.Generated {
		t.Fatalf("truth file has %d readings, simulator reports %d generated", len(readings), res.Generated)
	}
	checkExactlyOnce(t, c, readings)
	checkEngineResults(t, c, readings)
}
