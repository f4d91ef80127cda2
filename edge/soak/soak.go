package soak

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"time"

	"github.com/gridedge/gridedge/edge/buffer"
	"github.com/gridedge/gridedge/edge/config"
	"github.com/gridedge/gridedge/shared/wire"
)

// Outage is a period, measured from the start of the soak in simulated
// time, during which the uplink neither reads nor acks anything.
type Outage struct {
	Start    time.Duration
	Duration time.Duration
}

func (o Outage) covers(t time.Duration) bool { return t >= o.Start && t < o.Start+o.Duration }

// Config describes one soak. Zero fields take the defaults of
// DefaultConfig.
type Config struct {
	// Length is the simulated time during which readings are appended.
	// The uplink then drains what is left.
	Length time.Duration
	// Channels sampled every Interval, one reading each.
	Channels int
	Interval time.Duration
	// Outages of the uplink.
	Outages []Outage
	// ReplayRate is how many backlog readings per simulated second the
	// uplink sends on top of live data (the publisher's mqtt.replay_rate).
	ReplayRate int
	// BatchReadings is the most readings read and acked as one batch
	// (mqtt.max_batch_readings).
	BatchReadings int
	// UplinkEvery is the simulated time between uplink steps. A batch read
	// in one step is acked (deleted) in the next online step, so a batch is
	// always in flight while new ones are read.
	UplinkEvery time.Duration
	// SampleEvery is the simulated time between measurements.
	SampleEvery time.Duration
	// BufferOptions open the buffer (the agent's shipped options).
	BufferOptions []buffer.Option
	Logger        *slog.Logger
	// Progress, when set, sees every sample as it is taken.
	Progress func(Sample)
}

// DefaultConfig is one simulated day of 8 channels at 1 Hz with a 6-hour
// outage, the uplink at the shipped replay rate (200 backlog readings/s).
func DefaultConfig() Config {
	return Config{
		Length:        24 * time.Hour,
		Channels:      8,
		Interval:      time.Second,
		Outages:       []Outage{{Start: 6 * time.Hour, Duration: 6 * time.Hour}},
		ReplayRate:    200,
		BatchReadings: 500,
		UplinkEvery:   10 * time.Second,
		SampleEvery:   time.Hour,
	}
}

// WeekOutages is the outage schedule for runs of days simulated days: the
// 6-hour outage of the first day and, when the run lasts three days or
// more, a 24-hour outage starting at the end of the second day.
func WeekOutages(days int) []Outage {
	out := []Outage{{Start: 6 * time.Hour, Duration: 6 * time.Hour}}
	if days >= 3 {
		out = append(out, Outage{Start: 48 * time.Hour, Duration: 24 * time.Hour})
	}
	return out
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Length <= 0 {
		c.Length = d.Length
	}
	if c.Channels <= 0 {
		c.Channels = d.Channels
	}
	if c.Interval <= 0 {
		c.Interval = d.Interval
	}
	if c.ReplayRate <= 0 {
		c.ReplayRate = d.ReplayRate
	}
	if c.BatchReadings <= 0 {
		c.BatchReadings = d.BatchReadings
	}
	if c.UplinkEvery <= 0 {
		c.UplinkEvery = d.UplinkEvery
	}
	if c.SampleEvery <= 0 {
		c.SampleEvery = d.SampleEvery
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// ProcessUsage is what the whole process holds at one moment.
type ProcessUsage struct {
	OpenFiles      int   // entries in /proc/self/fd
	OpenFilesInDir int   // of those, files in the buffer directory
	MappedBytes    int64 // sum of every /proc/self/maps range
	MappedInDir    int64 // ranges mapped from files in the buffer directory
	RSS            int64 // VmRSS
	HWM            int64 // VmHWM, the peak RSS so far
}

// Sample is one measurement during the soak.
type Sample struct {
	Sim        time.Duration // simulated time since the start
	Wall       time.Duration // real time since the start
	Online     bool
	Held       int64  // readings in the buffer
	LiveBytes  int64  // the buffer's estimate of the bytes of readings held
	DiskBytes  int64  // space allocated on disk by the buffer directory
	FileBytes  int64  // sum of the sizes of the files in it
	Files      int    // files in the buffer directory
	Tables     int    // of those, SSTs (.sst)
	HeapAlloc  uint64 // heap objects, reachable or not yet collected
	HeapLive   uint64 // heap reachable at the last GC (runtime/metrics /gc/heap/live:bytes)
	HeapSys    uint64
	GoSys      uint64 // all memory the Go runtime obtained from the OS
	ProcessErr string
	ProcessUsage
}

// Report is the outcome of a soak.
type Report struct {
	Config   Config
	Appended uint64 // readings appended
	Read     uint64 // readings read by the uplink, each exactly once, in order
	Acked    uint64 // readings deleted on ack
	Samples  []Sample
	// Peak of each measurement over all samples.
	Peak Sample
	// PeakBacklogBytes is the buffer's LiveBytes at the largest backlog.
	PeakBacklogBytes int64
	// AfterDrain is the sample taken once the final drain emptied the
	// buffer; AfterReopen after closing and reopening it.
	AfterDrain  Sample
	AfterReopen Sample
	Stats       buffer.Stats
	Elapsed     time.Duration
}

// expected returns the reading the soak generates for sequence number seq
// (numbers are contiguous from the first one, one reading per channel per
// interval, channels in order), so the uplink can check what it reads.
func (c Config) expected(start time.Time, firstSeq, seq uint64) *wire.Reading {
	i := seq - firstSeq
	tick := i / uint64(c.Channels)
	ch := int(i % uint64(c.Channels))
	at := start.Add(time.Duration(tick) * c.Interval)
	return &wire.Reading{
		Channel:     fmt.Sprintf("ch%d", ch),
		Quantity:    wire.Quantity_QUANTITY_ACTIVE_POWER,
		Value:       math.Round(1000*(230+100*math.Sin(float64(tick)/600+float64(ch))))/1000 + float64(ch),
		WallNs:      at.UnixNano(),
		MonoNs:      int64(time.Duration(tick) * c.Interval),
		TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED,
	}
}

const bootID = "5f0c3a52-soak-4b1e-9d7e-000000000001"

// Run opens the buffer in dir (state in stateDir) and drives the soak:
// readings are appended in simulated time as fast as possible; the uplink
// reads what is not yet acked in order, checks each reading is exactly the
// one generated with the next sequence number, and deletes each batch on
// the next online step; outages stop the uplink; once appending ends the
// uplink drains the backlog. The buffer is then closed and reopened to
// check it is empty and measure it at rest. Run returns an error as soon as
// an outcome is wrong (a reading missing, repeated, out of order or altered;
// a delete that did not remove exactly the acked range; a buffer not empty
// after the drain).
func Run(ctx context.Context, dir, stateDir string, cfg Config) (Report, error) {
	cfg = cfg.withDefaults()
	rep := Report{Config: cfg}
	began := time.Now()
	buf, err := buffer.Open(dir, stateDir, cfg.BufferOptions...)
	if err != nil {
		return rep, fmt.Errorf("soak: %w", err)
	}
	defer func() {
		if buf != nil {
			buf.Close()
		}
	}()
	d := driver{cfg: cfg, buf: buf, dir: dir, began: began, rep: &rep,
		start: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC), epoch: buf.SeqEpoch(), first: buf.NextSeq()}
	d.nextRead = d.first
	if err := d.run(ctx); err != nil {
		return rep, err
	}

	st := buf.Stats()
	rep.Stats = st
	if st.Len != 0 || st.Appended != rep.Appended || st.Deleted != rep.Appended {
		return rep, fmt.Errorf("soak: after the drain the buffer holds %d readings (appended %d, deleted %d, want all %d deleted)",
			st.Len, st.Appended, st.Deleted, rep.Appended)
	}
	if st.Dropped != 0 || st.Summarised != 0 {
		return rep, fmt.Errorf("soak: the quota dropped %d and summarised %d readings; the backlog must fit", st.Dropped, st.Summarised)
	}
	if _, found, err := buf.Oldest(); err != nil || found {
		return rep, fmt.Errorf("soak: after the drain Oldest found=%v err=%v, want an empty buffer", found, err)
	}
	rep.AfterDrain = d.sample(d.simEnd, true)
	err = buf.Close()
	buf = nil
	if err != nil {
		return rep, fmt.Errorf("soak: close: %w", err)
	}
	reopened, err := buffer.Open(dir, stateDir, cfg.BufferOptions...)
	if err != nil {
		return rep, fmt.Errorf("soak: reopen: %w", err)
	}
	d.buf = reopened
	rep.AfterReopen = d.sample(d.simEnd, true)
	n := reopened.Len()
	if rec := reopened.Recovery(); rec.Unclean || rec.LastBuffered != 0 || n != 0 {
		reopened.Close()
		return rep, fmt.Errorf("soak: reopened buffer holds %d readings, recovery %+v; want empty and clean", n, rec)
	}
	if err := reopened.Close(); err != nil {
		return rep, fmt.Errorf("soak: close after reopen: %w", err)
	}
	rep.Elapsed = time.Since(began)
	return rep, nil
}

type driver struct {
	cfg   Config
	buf   *buffer.Buffer
	dir   string
	began time.Time
	rep   *Report
	start time.Time
	epoch uint64
	first uint64 // the first sequence number of the soak

	nextRead uint64           // next sequence number the uplink must see
	inFlight []*wire.SeqRange // read, awaiting the ack of the next online step
	simEnd   time.Duration
}

func (d *driver) online(t time.Duration) bool {
	for _, o := range d.cfg.Outages {
		if o.covers(t) {
			return false
		}
	}
	return true
}

func (d *driver) run(ctx context.Context) error {
	cfg := d.cfg
	ticks := int64(cfg.Length / cfg.Interval)
	uplinkTicks := max(int64(cfg.UplinkEvery/cfg.Interval), 1)
	sampleTicks := max(int64(cfg.SampleEvery/cfg.Interval), 1)
	liveRate := float64(cfg.Channels) / cfg.Interval.Seconds()
	budget := int(math.Ceil((float64(cfg.ReplayRate) + liveRate) * (time.Duration(uplinkTicks) * cfg.Interval).Seconds()))
	rs := make([]*wire.Reading, cfg.Channels)
	wasOnline := true
	for tick := int64(0); ; tick++ {
		if tick%1024 == 0 && ctx.Err() != nil {
			return fmt.Errorf("soak: stopped at %v simulated: %w", time.Duration(tick)*cfg.Interval, ctx.Err())
		}
		sim := time.Duration(tick) * cfg.Interval
		appending := tick < ticks
		if appending {
			seq := d.first + uint64(tick)*uint64(cfg.Channels)
			for ch := range rs {
				rs[ch] = cfg.expected(d.start, d.first, seq+uint64(ch))
			}
			if err := d.buf.Append(bootID, rs...); err != nil {
				return fmt.Errorf("soak: append at %v simulated: %w", sim, err)
			}
			d.rep.Appended += uint64(len(rs))
		}
		on := d.online(sim)
		if tick%sampleTicks == 0 || on != wasOnline {
			d.take(d.sample(sim, on))
		}
		wasOnline = on
		if tick%uplinkTicks == 0 && on {
			if err := d.uplink(budget); err != nil {
				return fmt.Errorf("soak: uplink at %v simulated: %w", sim, err)
			}
		}
		if !appending && len(d.inFlight) == 0 && d.buf.Len() == 0 {
			d.simEnd = sim
			d.take(d.sample(sim, on))
			return nil
		}
		if !appending && sim > cfg.Length+30*24*time.Hour {
			return fmt.Errorf("soak: uplink did not drain %d readings within 30 simulated days", d.buf.Len())
		}
	}
}

// uplink acks what the previous step read, then reads up to budget
// readings in batches, checking each is the next one generated.
func (d *driver) uplink(budget int) error {
	for _, r := range d.inFlight {
		n, err := d.buf.Delete(d.epoch, r)
		if err != nil {
			return err
		}
		if want := r.Last - r.First + 1; uint64(n) != want {
			return fmt.Errorf("ack of %d..%d (epoch %x) deleted %d readings, want %d; %s",
				r.First, r.Last, d.epoch, n, want, d.describe(r.First))
		}
		d.rep.Acked += uint64(n)
	}
	d.inFlight = d.inFlight[:0]
	for budget > 0 {
		recs, err := d.buf.Read(d.nextRead-1, min(budget, d.cfg.BatchReadings))
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			// Appends commit before they return, so every number below
			// NextSeq that was not yet read must be readable.
			if d.nextRead < d.buf.NextSeq() {
				return fmt.Errorf("nothing to read after seq %d although %d were appended; %s", d.nextRead-1, d.buf.NextSeq()-1, d.describe(d.nextRead))
			}
			return nil
		}
		for _, rec := range recs {
			if err := d.check(rec); err != nil {
				return err
			}
			d.nextRead++
		}
		d.inFlight = append(d.inFlight, &wire.SeqRange{First: recs[0].Seq, Last: recs[len(recs)-1].Seq})
		d.rep.Read += uint64(len(recs))
		budget -= len(recs)
	}
	return nil
}

// describe says what the buffer holds around seq, for error messages.
func (d *driver) describe(seq uint64) string {
	oldest, found, err := d.buf.Oldest()
	next, nerr := d.buf.Read(seq-1, 1)
	var after uint64
	if len(next) > 0 {
		after = next[0].Seq
	}
	return fmt.Sprintf("buffer holds %d readings (counter), oldest seq %d (found %v, err %v), first seq >= %d is %d (err %v)",
		d.buf.Len(), oldest.Seq, found, err, seq, after, nerr)
}

func (d *driver) check(rec buffer.Record) error {
	if rec.Seq != d.nextRead {
		return fmt.Errorf("read seq %d, want %d (a reading was lost, repeated or reordered)", rec.Seq, d.nextRead)
	}
	if rec.SeqEpoch != d.epoch || rec.BootID != bootID {
		return fmt.Errorf("seq %d: epoch %x boot %q, want %x %q", rec.Seq, rec.SeqEpoch, rec.BootID, d.epoch, bootID)
	}
	want := d.cfg.expected(d.start, d.first, rec.Seq)
	got := rec.Reading
	if got.Seq != rec.Seq || got.Channel != want.Channel || got.Quantity != want.Quantity || got.Value != want.Value ||
		got.WallNs != want.WallNs || got.MonoNs != want.MonoNs || got.TimeQuality != want.TimeQuality {
		return fmt.Errorf("seq %d: read %v, appended %v", rec.Seq, got, want)
	}
	return nil
}

func (d *driver) take(s Sample) {
	r := d.rep
	r.Samples = append(r.Samples, s)
	p := &r.Peak
	if s.Held > p.Held {
		p.Held = s.Held
		r.PeakBacklogBytes = s.LiveBytes
	}
	p.LiveBytes = max(p.LiveBytes, s.LiveBytes)
	p.DiskBytes = max(p.DiskBytes, s.DiskBytes)
	p.FileBytes = max(p.FileBytes, s.FileBytes)
	p.Files = max(p.Files, s.Files)
	p.Tables = max(p.Tables, s.Tables)
	p.HeapAlloc = max(p.HeapAlloc, s.HeapAlloc)
	p.HeapSys = max(p.HeapSys, s.HeapSys)
	p.HeapLive = max(p.HeapLive, s.HeapLive)
	p.GoSys = max(p.GoSys, s.GoSys)
	p.OpenFiles = max(p.OpenFiles, s.OpenFiles)
	p.OpenFilesInDir = max(p.OpenFilesInDir, s.OpenFilesInDir)
	p.MappedBytes = max(p.MappedBytes, s.MappedBytes)
	p.MappedInDir = max(p.MappedInDir, s.MappedInDir)
	p.RSS = max(p.RSS, s.RSS)
	p.HWM = max(p.HWM, s.HWM)
	if s.ProcessErr != "" {
		p.ProcessErr = s.ProcessErr
	}
	if d.cfg.Progress != nil {
		d.cfg.Progress(s)
	}
}

func (d *driver) sample(sim time.Duration, online bool) Sample {
	st := d.buf.Stats()
	s := Sample{Sim: sim, Wall: time.Since(d.began), Online: online, Held: st.Len, LiveBytes: st.LiveBytes}
	s.DiskBytes, s.FileBytes, s.Files, s.Tables = dirUsage(d.dir)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.HeapAlloc, s.HeapSys, s.GoSys = ms.HeapAlloc, ms.HeapSys, ms.Sys
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	if live[0].Value.Kind() == metrics.KindUint64 {
		s.HeapLive = live[0].Value.Uint64()
	}
	u, err := processUsage(d.dir)
	if err != nil {
		s.ProcessErr = err.Error()
	}
	s.ProcessUsage = u
	return s
}

// dirUsage walks the buffer directory (Badger keeps it flat, but a walk
// does not depend on that).
func dirUsage(dir string) (allocatedBytes, sizeBytes int64, files, tables int) {
	_ = filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return nil // a file compaction removed while we walked is simply not counted
		}
		info, err := e.Info()
		if err != nil {
			return nil
		}
		files++
		if strings.HasSuffix(path, ".sst") {
			tables++
		}
		allocatedBytes += allocated(info)
		sizeBytes += info.Size()
		return nil
	})
	return allocatedBytes, sizeBytes, files, tables
}

// ShippedBufferOptions are the buffer options the agent opens its buffer
// with when the configuration leaves buffer settings at their defaults
// (edge/config's defaults: sync interval, disk quota and backend "auto",
// which is bolt on 32-bit platforms and Badger on 64-bit ones;
// BadgerOptions is applied by buffer.Open itself). gcInterval replaces the one-minute
// value-log GC and quota check: in an accelerated soak one real minute is
// many simulated hours, so the caller states how often it runs.
func ShippedBufferOptions(log *slog.Logger, gcInterval time.Duration) []buffer.Option {
	var c config.Config
	c.ApplyDefaults()
	return []buffer.Option{
		buffer.WithLogger(log),
		buffer.WithSyncInterval(c.Buffer.SyncInterval.D()),
		buffer.WithQuota(c.Buffer.QuotaBytes),
		buffer.WithBackend(buffer.Backend(c.Buffer.Backend)),
		buffer.WithGCInterval(gcInterval),
	}
}
