package sim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // the replay file is in Europe/Paris; gateways may lack zoneinfo

	"github.com/gridedge/gridedge/edge/agent"
	"github.com/gridedge/gridedge/edge/clock"
	"github.com/gridedge/gridedge/hardware/sensor"
	"github.com/gridedge/gridedge/shared/wire"
)

// householdHeader is the first line of the UCI household file.
const householdHeader = "Date;Time;Global_active_power;Global_reactive_power;Voltage;Global_intensity;Sub_metering_1;Sub_metering_2;Sub_metering_3"

var householdFields = strings.Split(householdHeader, ";")

// Column indexes used by the replay.
const (
	colDate   = 0
	colTime   = 1
	colActive = 2
	colSub1   = 6
	nCols     = 9
)

// ReplayChannels are the channels of a replayed meter, in order.
var ReplayChannels = []string{"mains", "sub1", "sub2", "sub3"}

// Row is one minute of the household file, converted: Power[0] is the main
// meter (Global_active_power kW × 1000 = W), Power[1..3] the sub-meters
// (Wh in that minute × 60 = mean W over the minute). A value given as `?`
// is NaN.
type Row struct {
	Line  int
	Time  time.Time // start of the minute, UTC
	Power [4]float64
}

// HouseholdFile is the parsed replay file.
type HouseholdFile struct {
	Rows []Row
	// Missing counts values given as `?` (skipped on replay).
	Missing int
	byMin   map[int64]int
}

// ReadHouseholdFile reads the UCI household CSV at path.
func ReadHouseholdFile(path string) (*HouseholdFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	hf, err := ReadHousehold(f)
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", path, err)
	}
	return hf, nil
}

// ReadHousehold parses the UCI "Individual household electric power
// consumption" format: `;`-separated, a header line, local time in
// Europe/Paris. A `?` value is skipped and counted; any other malformed
// row is an error naming the line and the field.
func ReadHousehold(r io.Reader) (*HouseholdFile, error) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		return nil, fmt.Errorf("load Europe/Paris: %w", err)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<16)
	hf := &HouseholdFile{byMin: map[int64]int{}}
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if line == 1 {
			if text != householdHeader {
				return nil, fmt.Errorf("line 1: header %q, want %q", text, householdHeader)
			}
			continue
		}
		if text == "" {
			continue
		}
		fields := strings.Split(text, ";")
		if len(fields) != nCols {
			return nil, fmt.Errorf("line %d: %d fields, want %d separated by ';'", line, len(fields), nCols)
		}
		t, err := time.ParseInLocation("2/1/2006 15:04:05", fields[colDate]+" "+fields[colTime], paris)
		if err != nil {
			return nil, fmt.Errorf("line %d: field Date/Time %q %q: want dd/mm/yyyy hh:mm:ss", line, fields[colDate], fields[colTime])
		}
		row := Row{Line: line, Time: t.UTC()}
		for i, col := range []int{colActive, colSub1, colSub1 + 1, colSub1 + 2} {
			v, missing, err := parseValue(fields[col])
			if err != nil {
				return nil, fmt.Errorf("line %d: field %s: %w", line, householdFields[col], err)
			}
			if missing {
				hf.Missing++
				row.Power[i] = math.NaN()
				continue
			}
			if i == 0 {
				row.Power[i] = v * 1000
			} else {
				row.Power[i] = v * 60
			}
		}
		// Rows must move forward in time; the autumn DST change repeats
		// local hours, which Go resolves to the first occurrence, so a
		// repeated UTC minute is reported rather than silently merged.
		if n := len(hf.Rows); n > 0 && !row.Time.After(hf.Rows[n-1].Time) {
			return nil, fmt.Errorf("line %d: field Date/Time: %s is not after line %d's %s",
				line, row.Time.Format(time.RFC3339), hf.Rows[n-1].Line, hf.Rows[n-1].Time.Format(time.RFC3339))
		}
		hf.byMin[row.Time.Unix()/60] = len(hf.Rows)
		hf.Rows = append(hf.Rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	if len(hf.Rows) == 0 {
		return nil, errors.New("no data rows")
	}
	return hf, nil
}

func parseValue(s string) (v float64, missing bool, err error) {
	s = strings.TrimSpace(s)
	if s == "?" {
		return 0, true, nil
	}
	v, err = strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, false, fmt.Errorf("%q is not a non-negative number", s)
	}
	return v, false, nil
}

// Start is the first row's time; End is the end of the last row's minute.
func (hf *HouseholdFile) Start() time.Time { return hf.Rows[0].Time }

// End is just past the last minute in the file.
func (hf *HouseholdFile) End() time.Time { return hf.Rows[len(hf.Rows)-1].Time.Add(time.Minute) }

// At returns the row for the minute starting at t.
func (hf *HouseholdFile) At(t time.Time) (Row, bool) {
	if t.Unix()%60 != 0 || t.Nanosecond() != 0 {
		return Row{}, false
	}
	i, ok := hf.byMin[t.Unix()/60]
	if !ok {
		return Row{}, false
	}
	return hf.Rows[i], true
}

// replaySensor reports one column of the file for the minute being sampled.
type replaySensor struct {
	hf    *HouseholdFile
	index int
	name  string
	// at is the true time of a sample stamp (nil: its wall time).
	at func(clock.Stamp) time.Time
}

func newReplaySensor(hf *HouseholdFile, channel string, at func(clock.Stamp) time.Time) (*replaySensor, error) {
	for i, c := range ReplayChannels {
		if c == channel {
			return &replaySensor{hf: hf, index: i, name: channel, at: at}, nil
		}
	}
	return nil, fmt.Errorf("replay profile has channels %v, not %q", ReplayChannels, channel)
}

func (s *replaySensor) Sense(ctx context.Context) ([]sensor.Value, error) {
	st, ok := agent.SampleTime(ctx)
	if !ok {
		return nil, errors.New("replay sensor needs the sample time")
	}
	t := time.Unix(0, st.WallNs)
	if s.at != nil {
		t = s.at(st)
	}
	row, ok := s.hf.At(t)
	if !ok || math.IsNaN(row.Power[s.index]) {
		return nil, nil // no row for this minute, or `?`: nothing to report
	}
	return []sensor.Value{{Quantity: wire.Quantity_QUANTITY_ACTIVE_POWER, Value: row.Power[s.index]}}, nil
}

func (s *replaySensor) String() string { return "sim-replay:" + s.name }

// Instant: Sense reads the file loaded in memory (sensor.Instant).
func (s *replaySensor) Instant() bool { return true }
func (s *replaySensor) Close() error  { return nil }
