package publish

import (
	"google.golang.org/protobuf/proto"

	"github.com/gridedge/gridedge/edge/buffer"
)

// batchOverhead is a generous allowance for a batch's fixed fields (device
// id, boot ids, epoch, send stamps, version) on top of the readings.
const batchOverhead = 256

// readingOverhead covers the field tag and length prefix of each reading in
// the batch.
const readingOverhead = 4

// batchLen returns how many records from the front of recs go into one
// batch: all of one sequence epoch and one boot id, at most maxReadings and
// (estimated) maxBytes encoded. It is at least 1 when recs is not empty, so
// an oversized reading is still sent rather than stuck forever.
func batchLen(recs []buffer.Record, maxReadings, maxBytes int) int {
	if len(recs) == 0 {
		return 0
	}
	first := recs[0]
	size := batchOverhead + 2*len(first.BootID)
	n := 0
	for _, r := range recs {
		if n == maxReadings || r.BootID != first.BootID || r.SeqEpoch != first.SeqEpoch {
			break
		}
		size += proto.Size(r.Reading) + readingOverhead
		if n > 0 && size > maxBytes {
			break
		}
		n++
	}
	return max(n, 1)
}
