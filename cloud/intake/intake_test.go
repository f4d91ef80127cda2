package intake

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridedge/gridedge/cloud/diskguard"
	"github.com/gridedge/gridedge/cloud/readlog/local"
	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/shared/wire"
)

type deadLetters struct{ got []store.DeadLetter }

func (d *deadLetters) PutDeadLetter(dl store.DeadLetter) (uint64, error) {
	d.got = append(d.got, dl)
	return uint64(len(d.got)), nil
}

type space struct{ err error }

func (s *space) Check() error { return s.err }

func newIntake(t *testing.T) (*Intake, *local.Log, *deadLetters, *space) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	lg, err := local.Open(filepath.Join(t.TempDir(), "log"), local.WithPartitions(1), local.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	dl, sp := &deadLetters{}, &space{}
	in, err := New(lg, dl, prometheus.NewRegistry(), WithLogger(quiet), WithSpace(sp))
	if err != nil {
		t.Fatal(err)
	}
	return in, lg, dl, sp
}

func handle(in *Intake, payload []byte) (Outcome, error) {
	done := make(chan struct{})
	var out Outcome
	var err error
	in.HandleData(context.Background(), "gridedge/v1/s/dev/data", payload, time.Now(), func(o Outcome, e error) {
		out, err = o, e
		close(done)
	})
	<-done
	return out, err
}

func batchAt(ns int64) []byte {
	p, _ := wire.EncodeBatch(&wire.Batch{SchemaVersion: wire.SchemaVersion, DeviceId: "dev", SeqEpoch: 1, Readings: []*wire.Reading{
		{Seq: 1, Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: 1, WallNs: 1_800_000_000_000_000_000, TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED},
		{Seq: 2, Channel: "mains", Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: 2, WallNs: ns, TimeQuality: wire.TimeQuality_TIME_QUALITY_SYNCED}}})
	return p
}

// A reading time outside 1970..2116 dead-letters its batch (time_range);
// the edges are accepted.
func TestTimesOutsideTheRangeAreDeadLettered(t *testing.T) {
	in, _, dl, _ := newIntake(t)
	for _, ns := range []int64{MinTimeNs, MaxTimeNs} {
		if _, err := handle(in, batchAt(ns)); err != nil {
			t.Fatalf("time %d: %v", ns, err)
		}
	}
	for _, ns := range []int64{-1, MaxTimeNs + 1, -1 << 63, 1<<63 - 1} {
		_, err := handle(in, batchAt(ns))
		var rej *RejectError
		if !errors.As(err, &rej) || rej.Reason != ReasonTimeRange {
			t.Fatalf("time %d: %v, want a time_range rejection", ns, err)
		}
	}
	if len(dl.got) != 4 || dl.got[0].Reason != ReasonTimeRange || len(dl.got[0].Payload) == 0 {
		t.Fatalf("dead letters %+v, want 4 time_range with their payloads", dl.got)
	}
}

// Below the disk reserve every payload is refused before anything is
// written: no dead letter, no log record, no ack.
func TestLowSpaceRefusesWithoutWriting(t *testing.T) {
	in, lg, dl, sp := newIntake(t)
	sp.err = diskguard.ErrLowSpace
	for _, p := range [][]byte{batchAt(1), []byte("garbage")} {
		out, err := handle(in, p)
		if !errors.Is(err, diskguard.ErrLowSpace) || out.Ack != nil {
			t.Fatalf("low space: %+v, %v; want ErrLowSpace and no ack", out, err)
		}
	}
	stErr := make(chan error, 1)
	in.HandleStatus(context.Background(), "gridedge/v1/s/dev/status", []byte("x"), time.Now(), func(err error) { stErr <- err })
	if err := <-stErr; !errors.Is(err, diskguard.ErrLowSpace) {
		t.Fatalf("status at low space: %v", err)
	}
	if len(dl.got) != 0 {
		t.Fatalf("%d dead letters written while the disk is low", len(dl.got))
	}
	if st := lg.Stats(); st.Partitions[0].Durable != 0 {
		t.Fatalf("%d records appended while the disk is low", st.Partitions[0].Durable)
	}
	sp.err = nil
	if out, err := handle(in, batchAt(1)); err != nil || out.Ack == nil {
		t.Fatalf("space back: %+v, %v", out, err)
	}
}
