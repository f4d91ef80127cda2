package buffer

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gridedge/gridedge/shared/atomicfile"
)

// seqStateFile is the name of the sequence state in the state directory.
const seqStateFile = "seq.json"

// seqState is what survives in the state directory. Sequence numbers up to
// and including ReservedThrough may already have been handed out; the next
// process start continues after it, so a crash never reuses a number.
type seqState struct {
	Version int `json:"version"`
	// SeqEpoch is chosen at random when the state is created.
	SeqEpoch uint64 `json:"seq_epoch"`
	// ReservedThrough is the highest sequence number that may be in use.
	ReservedThrough uint64 `json:"reserved_through"`
	// Clean is true when the last process closed the buffer properly, so
	// ReservedThrough is exactly the last number used.
	Clean bool `json:"clean"`
}

func loadSeqState(dir string) (seqState, bool, error) {
	path := filepath.Join(dir, seqStateFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return seqState{}, false, nil
	}
	if err != nil {
		return seqState{}, false, fmt.Errorf("read sequence state: %w", err)
	}
	var s seqState
	if err := json.Unmarshal(data, &s); err != nil {
		return seqState{}, false, fmt.Errorf("sequence state %s is corrupt (%v): move it away to start a new sequence epoch", path, err)
	}
	if s.Version != 1 || s.SeqEpoch == 0 {
		return seqState{}, false, fmt.Errorf("sequence state %s: unsupported version %d or zero epoch", path, s.Version)
	}
	return s, true, nil
}

func newSeqState() (seqState, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return seqState{}, fmt.Errorf("random sequence epoch: %w", err)
		}
		if e := binary.BigEndian.Uint64(b[:]); e != 0 {
			return seqState{Version: 1, SeqEpoch: e}, nil
		}
	}
}

// save writes the state atomically: a crash leaves either the old or the
// new file, never a torn one.
func (s seqState) save(dir string) error {
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode sequence state: %w", err)
	}
	return atomicfile.Write(filepath.Join(dir, seqStateFile), data)
}
