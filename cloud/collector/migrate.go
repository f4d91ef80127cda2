package collector

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/gridedge/gridedge/cloud/intake"
	"github.com/gridedge/gridedge/cloud/readlog"
	"github.com/gridedge/gridedge/cloud/readlog/local"
	"github.com/gridedge/gridedge/shared/wire"
)

// MigrateStats says what Migrate carried over.
type MigrateStats struct {
	Devices, Statuses, Batches int
	Readings                   uint64
}

// migrateBatch is the most readings put in one migrated batch.
const migrateBatch = 1000

// Migrate carries a data directory of the release before the partitioned
// log (one Badger store) into a new data directory: every device's stored
// status and readings are appended to the new readings log, each device's
// readings in time order across its series, as batches of its sequence
// epochs with their original receive times. The collector started on the
// new directory then stores and windows them like any batch, deduplicated
// on (device, seq_epoch, seq), with the new pipelines' results computed
// from all of them. The new directory must be empty; the old one is only
// read.
func Migrate(ctx context.Context, from, to string, partitions int, log *slog.Logger) (MigrateStats, error) {
	var st MigrateStats
	if entries, err := os.ReadDir(to); err == nil && len(entries) > 0 {
		return st, fmt.Errorf("migrate: %s is not empty: give a new data directory", to)
	}
	db, err := badger.Open(badger.DefaultOptions(from).WithReadOnly(true).WithLogger(nil))
	if err != nil {
		return st, fmt.Errorf("migrate: open %s (a data directory of the earlier release): %w", from, err)
	}
	defer db.Close()
	lg, err := local.Open(filepath.Join(to, "log"), local.WithPartitions(partitions), local.WithLogger(log))
	if err != nil {
		return st, fmt.Errorf("migrate: %w", err)
	}
	defer lg.Close()
	ap := &appender{ctx: ctx, log: lg}
	err = db.View(func(txn *badger.Txn) error {
		sites := map[string]string{}
		if err := eachJSON(txn, 'i', func(v struct {
			ID   string `json:"id"`
			Site string `json:"site"`
		}) {
			sites[v.ID] = v.Site
		}); err != nil {
			return err
		}
		// Statuses first: their zones decide the devices' calendar windows.
		if err := eachJSON(txn, 's', func(v struct {
			Device   string    `json:"device"`
			Site     string    `json:"site"`
			Online   bool      `json:"online"`
			Agent    string    `json:"agent_version"`
			BootID   string    `json:"boot_id"`
			TimeZone string    `json:"time_zone"`
			Received time.Time `json:"received"`
		}) {
			p, err := wire.EncodeStatus(&wire.Status{SchemaVersion: wire.SchemaVersion, DeviceId: v.Device, Online: v.Online,
				AgentVersion: v.Agent, BootId: v.BootID, TimeZone: v.TimeZone})
			if err == nil {
				ap.add(v.Device, intake.Record{Kind: intake.KindStatus, ReceivedNs: v.Received.UnixNano(), Site: v.Site, Payload: p})
				st.Statuses++
			}
		}); err != nil {
			return err
		}
		for dev, site := range sites {
			n, b, err := migrateDevice(txn, dev, site, ap)
			if err != nil {
				return fmt.Errorf("device %s: %w", dev, err)
			}
			st.Devices++
			st.Readings += n
			st.Batches += b
		}
		return nil
	})
	if err == nil {
		err = ap.wait()
	}
	if err != nil {
		return st, fmt.Errorf("migrate: %w", err)
	}
	return st, nil
}

// eachJSON decodes every value under a one-byte prefix into a T.
func eachJSON[T any](txn *badger.Txn, prefix byte, fn func(T)) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefix}, PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var v T
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &v) }); err != nil {
			return fmt.Errorf("decode %q: %w", it.Item().Key(), err)
		}
		fn(v)
	}
	return nil
}

// oldReading is one reading in the earlier release's layout:
// r dev 0 chan 0 qty(4) time(8) epoch(8) seq(8) → value(8) err(8) received(8) quality(1).
type oldReading struct {
	r        *wire.Reading
	epoch    uint64
	received int64
}

func decodeOld(channel string, q wire.Quantity, k, v []byte) (oldReading, bool) {
	if len(k) < 24 || len(v) != 25 {
		return oldReading{}, false
	}
	t := k[len(k)-24:]
	return oldReading{
		r: &wire.Reading{Seq: binary.BigEndian.Uint64(t[16:]), Channel: channel, Quantity: q,
			Value: math.Float64frombits(binary.BigEndian.Uint64(v)), WallNs: int64(binary.BigEndian.Uint64(t) ^ (1 << 63)),
			TimeErrorNs: int64(binary.BigEndian.Uint64(v[8:])), TimeQuality: wire.TimeQuality(v[24])},
		epoch: binary.BigEndian.Uint64(t[8:]), received: int64(binary.BigEndian.Uint64(v[16:])),
	}, true
}

// seriesIter walks one series of the old store in time order.
type seriesIter struct {
	it      *badger.Iterator
	prefix  []byte
	channel string
	q       wire.Quantity
	cur     oldReading
}

func (s *seriesIter) next() bool {
	for ; s.it.ValidForPrefix(s.prefix); s.it.Next() {
		v, err := s.it.Item().ValueCopy(nil)
		if err != nil {
			return false
		}
		r, ok := decodeOld(s.channel, s.q, s.it.Item().Key(), v)
		s.it.Next()
		if ok {
			s.cur = r
			return true
		}
	}
	return false
}

type byTime []*seriesIter

func (h byTime) Len() int           { return len(h) }
func (h byTime) Less(i, j int) bool { return h[i].cur.r.WallNs < h[j].cur.r.WallNs }
func (h byTime) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *byTime) Push(x any)        { *h = append(*h, x.(*seriesIter)) }
func (h *byTime) Pop() any          { o := *h; x := o[len(o)-1]; *h = o[:len(o)-1]; return x }

func migrateDevice(txn *badger.Txn, dev, site string, ap *appender) (readings uint64, batches int, err error) {
	// Find the device's series: skip from one to the next.
	devPrefix := append(append([]byte{'r'}, dev...), 0)
	scan := txn.NewIterator(badger.IteratorOptions{Prefix: devPrefix})
	var series [][]byte
	for scan.Rewind(); scan.Valid(); {
		k := scan.Item().Key()
		if len(k) < len(devPrefix)+1+4+24 {
			scan.Next()
			continue
		}
		sp := bytes.Clone(k[:len(k)-24])
		series = append(series, sp)
		scan.Seek(append(bytes.Clone(sp), bytes.Repeat([]byte{0xff}, 25)...))
	}
	scan.Close()
	h := &byTime{}
	for _, sp := range series {
		rest := sp[len(devPrefix):]
		i := bytes.IndexByte(rest, 0)
		if i < 0 || len(rest) != i+1+4 {
			continue
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: sp, PrefetchValues: true})
		defer it.Close()
		it.Rewind()
		s := &seriesIter{it: it, prefix: sp, channel: string(rest[:i]), q: wire.Quantity(binary.BigEndian.Uint32(rest[i+1:]))}
		if s.next() {
			heap.Push(h, s)
		}
	}
	b := &wire.Batch{SchemaVersion: wire.SchemaVersion, DeviceId: dev}
	var received int64
	flush := func() error {
		if len(b.Readings) == 0 {
			return nil
		}
		p, err := wire.EncodeBatch(b)
		if err != nil {
			return err
		}
		ap.add(dev, intake.Record{Kind: intake.KindData, ReceivedNs: received, Site: site, Payload: p})
		batches++
		b = &wire.Batch{SchemaVersion: wire.SchemaVersion, DeviceId: dev}
		received = 0
		return nil
	}
	for h.Len() > 0 {
		s := (*h)[0]
		r := s.cur
		if len(b.Readings) > 0 && (r.epoch != b.SeqEpoch || len(b.Readings) >= migrateBatch) {
			if err := flush(); err != nil {
				return readings, batches, err
			}
		}
		b.SeqEpoch = r.epoch
		b.Readings = append(b.Readings, r.r)
		received = max(received, r.received)
		readings++
		if s.next() {
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	return readings, batches, flush()
}

// appender appends records and waits for all of them to be durable.
type appender struct {
	ctx context.Context
	log readlog.Log
	wg  sync.WaitGroup
	mu  sync.Mutex
	err error
}

func (a *appender) add(device string, rec intake.Record) {
	key := []byte(device)
	a.wg.Add(1)
	err := a.log.Append(a.ctx, readlog.PartitionFor(key, a.log.Partitions()), key, intake.AppendRecord(nil, rec), func(_ int64, err error) {
		if err != nil {
			a.fail(err)
		}
		a.wg.Done()
	})
	if err != nil {
		a.fail(err)
		a.wg.Done()
	}
}

func (a *appender) fail(err error) {
	a.mu.Lock()
	a.err = errors.Join(a.err, err)
	a.mu.Unlock()
}

func (a *appender) wait() error {
	a.wg.Wait()
	return a.err
}
