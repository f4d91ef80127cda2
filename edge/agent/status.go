package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/gridedge/gridedge/edge/buffer"
	"github.com/gridedge/gridedge/edge/status"
	"github.com/gridedge/gridedge/shared/periodic"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Snapshot is the agent's state for status.json, `gridedge-agent status`
// and /metrics.
func (a *Agent) Snapshot() status.Snapshot {
	st := a.Stats()
	bs := a.buf.Stats()
	now := a.src.Now()
	s := status.Snapshot{
		DeviceID: a.cfg.DeviceID, Site: a.cfg.Site, AgentVersion: a.o.version,
		WrittenAt: time.Now().UTC(), Interval: status.Duration(a.cfg.StatusInterval.D()),
		BootID: now.BootID, ClockQuality: a.src.Quality().Name(),
		SeqEpoch: fmt.Sprintf("%016x", a.buf.SeqEpoch()), NextSeq: a.buf.NextSeq(), Connected: st.Connected,
		Buffered: bs.Len, DiskBytes: bs.DiskBytes, LiveBytes: bs.LiveBytes, QuotaBytes: a.cfg.Buffer.QuotaBytes,
		Generated: st.Generated, Sent: st.Sent, Resent: st.Resent, Acked: st.Acked,
		Dropped: st.Dropped, Summarised: st.Summarised, AppendErrors: st.AppendErrors,
		SenseErrors: st.ChannelErrors, Quarantined: a.buf.Recovery().Quarantined, DiskFull: bs.DiskFull,
	}
	if rec, ok, err := a.oldestUnsent(); err == nil && ok {
		s.OldestUnsent = time.Unix(0, rec.Reading.WallNs).UTC()
	}
	return s
}

// statusFile rewrites state_dir/status.json every status interval from a
// timer (no goroutine between writes), and once more when stopped.
type statusFile struct {
	a    *Agent
	task *periodic.Task
}

// startStatus writes the status file now and then every status interval
// until stop.
func (a *Agent) startStatus() *statusFile {
	f := &statusFile{a: a}
	f.write()
	f.task = periodic.Start(a.cfg.StatusInterval.D(), f.write)
	return f
}

func (f *statusFile) write() {
	if err := status.Write(f.a.cfg.StateDir, f.a.Snapshot()); err != nil {
		f.a.log.Warn("write status file", "err", err)
	}
}

// stop ends the periodic writes and writes the file a last time.
func (f *statusFile) stop() {
	f.task.Stop()
	f.write()
}

// serveMetrics serves /metrics on addr until ctx is done. The listener is
// opened before returning so a bad address fails Run at start.
func (a *Agent) serveMetrics(ctx context.Context, addr string) (func() error, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(status.NewCollector(a.Snapshot))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_addr: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	a.metricsAddr.Store(ln.Addr().String())
	return func() error {
		go func() {
			<-ctx.Done()
			shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(shut)
		}()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, nil
}

// MetricsAddr is the address /metrics listens on once Run has started
// (useful with metrics_addr "127.0.0.1:0"); empty when disabled.
func (a *Agent) MetricsAddr() string {
	s, _ := a.metricsAddr.Load().(string)
	return s
}

// oldestUnsent returns the oldest reading in the buffer. Sequence numbers
// only grow and readings are only ever deleted, so the oldest can only move
// forward: the search starts at the previous answer instead of the
// buffer's start, where an LSM store steps over every reading deleted since
// its last compaction (hundreds of thousands a day at 8 readings/s) on
// each status update.
func (a *Agent) oldestUnsent() (buffer.Record, bool, error) {
	recs, err := a.buf.ReadRange(a.oldestSeq.Load(), ^uint64(0), 1)
	if err != nil || len(recs) == 0 {
		return buffer.Record{}, false, err
	}
	a.oldestSeq.Store(recs[0].Seq)
	return recs[0], true, nil
}
