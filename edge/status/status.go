package status

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// FileName is the status file's name in the agent's state directory.
const FileName = "status.json"

// Snapshot is the agent's state at one moment.
type Snapshot struct {
	DeviceID     string    `json:"device_id"`
	Site         string    `json:"site"`
	AgentVersion string    `json:"agent_version"`
	WrittenAt    time.Time `json:"written_at"`
	// Interval is how often the agent rewrites the file; a file much older
	// than this means the agent is not running.
	Interval     Duration `json:"interval"`
	BootID       string   `json:"boot_id"`
	ClockQuality string   `json:"clock_quality"`
	SeqEpoch     string   `json:"seq_epoch"` // hex
	NextSeq      uint64   `json:"next_seq"`
	Connected    bool     `json:"mqtt_connected"`

	Buffered int64 `json:"buffered_readings"`
	// OldestUnsent is the wall time of the oldest reading not yet acked
	// (zero when the buffer is empty).
	OldestUnsent time.Time `json:"oldest_unsent,omitzero"`
	DiskBytes    int64     `json:"buffer_disk_bytes"`
	LiveBytes    int64     `json:"buffer_live_bytes"`
	QuotaBytes   int64     `json:"buffer_quota_bytes"`
	// DiskFull is true while the buffer's file system is below the
	// free-space reserve: new readings are refused (counted in
	// AppendErrors) until space returns, which resumes by itself.
	DiskFull bool `json:"buffer_disk_full,omitempty"`
	// Quarantined is where a corrupt buffer was moved at start (its readings
	// were not delivered); empty normally.
	Quarantined string `json:"buffer_quarantined,omitempty"`

	Generated    uint64            `json:"generated"`
	Sent         uint64            `json:"sent"`
	Resent       uint64            `json:"resent"`
	Acked        uint64            `json:"acked"`
	Dropped      uint64            `json:"dropped"`
	Summarised   uint64            `json:"summarised"`
	AppendErrors uint64            `json:"append_errors"`
	SenseErrors  map[string]uint64 `json:"sense_errors"`
}

// Duration marshals as a Go duration string.
type Duration time.Duration

// MarshalJSON writes "5s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "5s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Write replaces the status file in dir. It renames a complete temporary
// file into place, so a reader never sees a torn file; it does not fsync
// (the file is advisory and rewritten every few seconds, and an SD card
// should not pay a flush for it).
func Write(dir string, s Snapshot) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("status: encode: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+FileName+".tmp*")
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("status: write: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("status: write: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, FileName)); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	return nil
}

// Read loads the status file from dir.
func Read(dir string) (Snapshot, error) {
	path := filepath.Join(dir, FileName)
	data, err := os.ReadFile(path)
	if err != nil {
		return Snapshot{}, fmt.Errorf("status: %w (is the agent running with this state_dir?)", err)
	}
	var s Snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return Snapshot{}, fmt.Errorf("status: %s: %w", path, err)
	}
	return s, nil
}

// Stale reports whether the snapshot is older than three write intervals
// at now: the agent has stopped or hangs.
func (s Snapshot) Stale(now time.Time) bool {
	iv := max(time.Duration(s.Interval), time.Second)
	return now.Sub(s.WrittenAt) > 3*iv
}

// Format prints the snapshot for people.
func (s Snapshot) Format(w io.Writer, now time.Time) {
	age := now.Sub(s.WrittenAt).Round(time.Second)
	state := "running"
	if s.Stale(now) {
		state = "NOT RUNNING (status not updated for " + age.String() + ")"
	}
	conn := "disconnected"
	if s.Connected {
		conn = "connected"
	}
	fmt.Fprintf(w, "device       %s (site %s), agent %s: %s\n", s.DeviceID, s.Site, s.AgentVersion, state)
	fmt.Fprintf(w, "status at    %s (%s ago)\n", s.WrittenAt.UTC().Format(time.RFC3339), age)
	fmt.Fprintf(w, "clock        %s (boot %s)\n", s.ClockQuality, s.BootID)
	fmt.Fprintf(w, "mqtt         %s\n", conn)
	oldest := "-"
	if !s.OldestUnsent.IsZero() {
		oldest = fmt.Sprintf("%s (%s ago)", s.OldestUnsent.UTC().Format(time.RFC3339), now.Sub(s.OldestUnsent).Round(time.Second))
	}
	fmt.Fprintf(w, "buffer       %d readings unacked, oldest %s\n", s.Buffered, oldest)
	fmt.Fprintf(w, "disk         %s used, live %s, quota %s\n", humanBytes(s.DiskBytes), humanBytes(s.LiveBytes), humanBytes(s.QuotaBytes))
	if s.DiskFull {
		fmt.Fprintf(w, "WARNING      file system almost full: new readings are refused until space is freed (acked ones are deleted then)\n")
	}
	if s.Quarantined != "" {
		fmt.Fprintf(w, "WARNING      a corrupt buffer was moved to %s at start; its readings were not sent\n", s.Quarantined)
	}
	fmt.Fprintf(w, "sequence     epoch %s, next %d\n", s.SeqEpoch, s.NextSeq)
	fmt.Fprintf(w, "readings     generated %d, sent %d, resent %d, acked %d\n", s.Generated, s.Sent, s.Resent, s.Acked)
	fmt.Fprintf(w, "quota        summarised %d, dropped %d; append errors %d\n", s.Summarised, s.Dropped, s.AppendErrors)
	names := make([]string, 0, len(s.SenseErrors))
	for n := range s.SenseErrors {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s=%d", n, s.SenseErrors[n])
	}
	fmt.Fprintf(w, "sense errors %s\n", strings.Join(parts, " "))
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
