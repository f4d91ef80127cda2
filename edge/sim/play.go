package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridedge/gridedge/edge/buffer"
	"github.com/gridedge/gridedge/edge/publish"
	"github.com/gridedge/gridedge/shared/wire"
)

// PlayConfig describes sending a recording again.
type PlayConfig struct {
	MQTTURL string
	// Recording is the file Run wrote with Config.Record.
	Recording io.Reader
	// DataDir holds the publishers' buffers (required).
	DataDir string
	// Credentials and SourceAddrs as in Config.
	Credentials map[string]string
	SourceAddrs []netip.Addr
	// Timeout bounds the whole send (default 30 min).
	Timeout    time.Duration
	AckTimeout time.Duration
	Logger     *slog.Logger
}

// PlayResult is the outcome of Play.
type PlayResult struct {
	Devices  int           `json:"devices"`
	Readings uint64        `json:"readings"`
	Unacked  int64         `json:"unacked"`
	Load     time.Duration `json:"load_ns"` // reading the file into the buffers
	Send     time.Duration `json:"send_ns"` // first connect to the last ack
}

// Play loads a recording into one buffer per device (the shared store in
// memory) and sends it through one publisher per device, the agent's own,
// as fast as the collector acknowledges: each device replays its backlog
// with no rate limit. The readings get a fresh sequence epoch, so a
// collector that stored the recording once stores it again. It returns
// when every reading is acknowledged, or with an error wrapping
// ErrNotDrained at the timeout.
func Play(ctx context.Context, cfg PlayConfig) (PlayResult, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Minute
	}
	if cfg.AckTimeout == 0 {
		cfg.AckTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MQTTURL == "" || cfg.DataDir == "" || cfg.Recording == nil {
		return PlayResult{}, errors.New("sim: play: mqtt url, data dir and recording must be set")
	}
	var res PlayResult
	sh, err := buffer.OpenShared(filepath.Join(cfg.DataDir, "play"), buffer.WithSharedMode(buffer.SharedMemory),
		buffer.WithSharedLogger(cfg.Logger))
	if err != nil {
		return res, fmt.Errorf("sim: play: %w", err)
	}
	defer sh.Close()
	var boot [16]byte
	_, _ = rand.Read(boot[:])
	clk := NewClock(time.Now(), 1, hex.EncodeToString(boot[:]))
	clk.Begin()

	type device struct {
		buf  *buffer.Buffer
		pub  *publish.Publisher
		link *link
	}
	devices := map[string]*device{}
	defer func() {
		for _, d := range devices {
			d.buf.Close()
		}
	}()
	var site string
	loadStart := time.Now()
	err = ReadRecording(cfg.Recording, func(s string, b *wire.Batch) error {
		site = s
		d := devices[b.DeviceId]
		if d == nil {
			buf, err := buffer.Open(filepath.Join(cfg.DataDir, "buffers"), filepath.Join(cfg.DataDir, "state", b.DeviceId),
				buffer.WithShared(sh, b.DeviceId), buffer.WithLogger(cfg.Logger))
			if err != nil {
				return err
			}
			d = &device{buf: buf}
			devices[b.DeviceId] = d
		}
		res.Readings += uint64(len(b.Readings))
		return d.buf.Append(b.BootId, b.Readings...)
	})
	res.Load = time.Since(loadStart)
	if err != nil {
		return res, fmt.Errorf("sim: play: %w", err)
	}
	res.Devices = len(devices)
	names := make([]string, 0, len(devices))
	for n := range devices {
		names = append(names, n)
	}
	sort.Strings(names)
	addrs, err := sourceAddrs(Config{MQTTURL: cfg.MQTTURL, Meters: len(devices), SourceAddrs: cfg.SourceAddrs})
	if err != nil {
		return res, fmt.Errorf("sim: play: %w", err)
	}
	var open atomic.Int64
	for i, n := range names {
		d := devices[n]
		d.link = &link{c: clk, faults: &meterFaults{}, open: &open}
		if len(addrs) > 0 {
			d.link.local = addrs[i%len(addrs)]
		}
		pc := publish.Config{Site: site, DeviceID: n, URL: cfg.MQTTURL, ClientID: "gridedge-play-" + site + "-" + n,
			AckTimeout: cfg.AckTimeout}
		if secret, ok := cfg.Credentials[site+"/"+n]; ok {
			pc.Username, pc.Password = site+"/"+n, secret
			pc.ClientID = pc.Username
		} else if cfg.Credentials != nil {
			return res, fmt.Errorf("sim: play: credentials: no entry for %s/%s", site, n)
		}
		if d.pub, err = publish.New(pc, d.buf, clk, publish.WithLogger(cfg.Logger), publish.WithAgentVersion("gridedge-sim-play"),
			publish.WithBackoff(200*time.Millisecond, 5*time.Second), publish.WithDialer(d.link.dial), publish.WithLightClient()); err != nil {
			return res, fmt.Errorf("sim: play: %w", err)
		}
	}

	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	sendStart := time.Now()
	for _, d := range devices {
		wg.Add(1)
		go func() { defer wg.Done(); _ = d.pub.Run(runCtx) }()
	}
	deadline, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var waitErr error
	for {
		var left int64
		for _, d := range devices {
			left += d.buf.Len()
		}
		res.Unacked = left
		if left == 0 {
			break
		}
		select {
		case <-deadline.Done():
			waitErr = deadline.Err()
		case <-tick.C:
		}
		if waitErr != nil {
			break
		}
	}
	res.Send = time.Since(sendStart)
	stop()
	wg.Wait()
	switch {
	case waitErr == nil:
		return res, nil
	case ctx.Err() != nil:
		return res, fmt.Errorf("sim: play: %w", ctx.Err())
	default:
		return res, fmt.Errorf("%w: %d readings of %d devices", ErrNotDrained, res.Unacked, res.Devices)
	}
}
