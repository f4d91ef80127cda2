package sim

import (
	"encoding/csv"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/gridedge/gridedge/shared/wire"
)

// TruthHeader is the first line of a truth file.
var TruthHeader = []string{"device", "channel", "quantity", "seq_epoch", "seq", "time", "value"}

// TruthWriter records every generated reading as CSV:
// device,channel,quantity,seq_epoch,seq,time(RFC3339Nano UTC),value.
// seq_epoch is decimal. It is safe for concurrent use.
type TruthWriter struct {
	mu  sync.Mutex
	w   *csv.Writer
	n   uint64
	err error
}

// NewTruthWriter writes the header to w.
func NewTruthWriter(w io.Writer) *TruthWriter {
	t := &TruthWriter{w: csv.NewWriter(w)}
	t.err = t.w.Write(TruthHeader)
	return t
}

// Record writes one reading. The first write error is kept and returned by
// Flush.
func (t *TruthWriter) Record(device string, seqEpoch uint64, r *wire.Reading) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return
	}
	t.err = t.w.Write([]string{
		device, r.Channel, r.Quantity.Name(),
		strconv.FormatUint(seqEpoch, 10), strconv.FormatUint(r.Seq, 10),
		time.Unix(0, r.WallNs).UTC().Format(time.RFC3339Nano),
		strconv.FormatFloat(r.Value, 'g', -1, 64),
	})
	t.n++
}

// Count is the number of readings recorded.
func (t *TruthWriter) Count() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// Flush writes buffered rows and returns the first error seen.
func (t *TruthWriter) Flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.w.Flush()
	if t.err == nil {
		t.err = t.w.Error()
	}
	return t.err
}
