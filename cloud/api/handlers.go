package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gridedge/gridedge/cloud/store"
)

// Device is one entry of GET /api/v1/devices.
type Device struct {
	ID             string     `json:"id"`
	Site           string     `json:"site"`
	LastSeen       *time.Time `json:"last_seen"`
	ReadingsStored uint64     `json:"readings_stored"`
	Duplicates     uint64     `json:"duplicates"`
	Conflicts      uint64     `json:"conflicts"`
	Flagged        uint64     `json:"flagged"`
	Online         bool       `json:"online"`
	TimeZone       string     `json:"time_zone,omitempty"`
	AgentVersion   string     `json:"agent_version,omitempty"`
	StatusReceived *time.Time `json:"status_received,omitempty"`
}

func (s *server) device(id string, info *store.DeviceInfo, st *store.Status) Device {
	d := Device{ID: id, TimeZone: s.defaultTZ}
	if info != nil {
		seen := info.LastSeen
		d.Site, d.LastSeen, d.ReadingsStored, d.Duplicates = info.Site, &seen, info.ReadingsStored, info.Duplicates
		d.Conflicts, d.Flagged = info.Conflicts, info.Flagged
	}
	if st != nil {
		received := st.Received
		if d.Site == "" {
			d.Site = st.Site
		}
		d.Online, d.AgentVersion, d.StatusReceived = st.Online, st.AgentVersion, &received
		if st.TimeZone != "" {
			d.TimeZone = st.TimeZone
		}
	}
	return d
}

func (s *server) devices(w http.ResponseWriter, r *http.Request) {
	q, perr := parseDevicesQuery(r.URL.Query())
	if perr != nil {
		writeJSON(w, http.StatusBadRequest, perr)
		return
	}
	n, more := 0, false
	s.stream(w, nil, "devices", func(emit func(any) error) error {
		return s.res.Devices(q.after, func(id string, info *store.DeviceInfo, st *store.Status) error {
			if n == q.limit {
				more = true
				return errStop
			}
			n++
			return emit(s.device(id, info, st))
		})
	}, func() []field { return []field{{"truncated", more}} })
}

func (s *server) windows(w http.ResponseWriter, r *http.Request) {
	q, perr := parseWindowQuery(r.URL.Query(), s.windowSizes)
	if perr != nil {
		writeJSON(w, http.StatusBadRequest, perr)
		return
	}
	s.stream(w, []field{{"size", q.Size.String()}}, "windows", func(emit func(any) error) error {
		return s.st.Windows(q, func(win *store.Window) error { return emit(win) })
	}, nil)
}

// Reading is one entry of GET /api/v1/readings.
type Reading struct {
	Time        time.Time `json:"time"`
	Value       float64   `json:"value"`
	SeqEpoch    uint64    `json:"seq_epoch,string"`
	Seq         uint64    `json:"seq"`
	TimeQuality string    `json:"time_quality"`
	TimeErrorNs int64     `json:"time_error_ns,omitempty"`
	Received    time.Time `json:"received"`
	// Flags: "future" (dated beyond max_future after its receive time),
	// "implausible" (outside its quantity's range); such readings are kept
	// out of the windows.
	Flags []string `json:"flags,omitempty"`
}

func (s *server) readings(w http.ResponseWriter, r *http.Request) {
	q, perr := parseReadingsQuery(r.URL.Query())
	if perr != nil {
		writeJSON(w, http.StatusBadRequest, perr)
		return
	}
	n, truncated := 0, false
	s.stream(w, nil, "readings", func(emit func(any) error) error {
		return s.st.Readings(q.device, q.channel, q.quantity, q.from, q.to, func(rd store.Reading) error {
			if n == q.limit {
				truncated = true
				return errStop
			}
			n++
			return emit(Reading{Time: rd.Time, Value: rd.Value, SeqEpoch: rd.SeqEpoch, Seq: rd.Seq,
				TimeQuality: rd.TimeQuality.Name(), TimeErrorNs: rd.TimeErrorNs, Received: rd.Received, Flags: rd.Flags.Names()})
		})
	}, func() []field { return []field{{"truncated", truncated}} })
}

func (s *server) results(w http.ResponseWriter, r *http.Request) {
	q, perr := parseResultQuery(r.URL.Query(), s.pipelines)
	if perr != nil {
		writeJSON(w, http.StatusBadRequest, perr)
		return
	}
	s.stream(w, []field{{"pipeline", q.Pipeline}}, "results", func(emit func(any) error) error {
		return s.res.Results(q, func(res *store.WindowResult) error { return emit(res) })
	}, nil)
}

func (s *server) late(w http.ResponseWriter, r *http.Request) {
	q, perr := parseLateQuery(r.URL.Query())
	if perr != nil {
		writeJSON(w, http.StatusBadRequest, perr)
		return
	}
	s.stream(w, nil, "late", func(emit func(any) error) error {
		return s.res.LateReadings(q, func(l *store.LateReading) error { return emit(l) })
	}, nil)
}

// deadLetters lists dead letters without their payloads (bytes says how
// large each was); GET /api/v1/deadletters/{id} serves one with it.
func (s *server) deadLetters(w http.ResponseWriter, r *http.Request) {
	limit, perr := parseLimit(r.URL.Query().Get("limit"), 100, MaxDeadLetters)
	if perr != nil {
		writeJSON(w, http.StatusBadRequest, perr)
		return
	}
	s.stream(w, nil, "deadletters", func(emit func(any) error) error {
		return s.st.DeadLetters(limit, func(dl *store.DeadLetter) error { return emit(dl) })
	}, nil)
}

func (s *server) deadLetter(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, &Error{Parameter: "id", Error: "id " + strconv.Quote(r.PathValue("id")) + ": want a dead letter's numeric id"})
		return
	}
	dl, ok, err := s.st.DeadLetter(id)
	if err != nil {
		s.fail(w, err)
		return
	}
	if !ok {
		writeJSON(w, http.StatusNotFound, &Error{Parameter: "id", Error: "no dead letter " + strconv.FormatUint(id, 10) + " (never kept, or trimmed)"})
		return
	}
	writeJSON(w, http.StatusOK, dl)
}

func (s *server) conflicts(w http.ResponseWriter, r *http.Request) {
	q, perr := parseConflictQuery(r.URL.Query())
	if perr != nil {
		writeJSON(w, http.StatusBadRequest, perr)
		return
	}
	s.stream(w, nil, "conflicts", func(emit func(any) error) error {
		return s.st.Conflicts(q, func(c *store.Conflict) error { return emit(c) })
	}, nil)
}

// stream answers with streamArray and logs a failure that happened after
// the answer started.
func (s *server) stream(w http.ResponseWriter, head []field, array string, each func(emit func(any) error) error, tail func() []field) {
	if err := streamArray(w, head, array, each, tail); err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		s.log.Warn("api answer cut short", "list", array, "err", err)
	}
}
