package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gridedge/gridedge/cloud/store"
	"github.com/gridedge/gridedge/shared/wire"
)

// Option changes the API server.
type Option func(*server)

// WithGatherer serves the metrics of g on /metrics (default: none, an empty page).
func WithGatherer(g prometheus.Gatherer) Option { return func(s *server) { s.gatherer = g } }

// WithHealth sets the check behind /healthz; a non-nil error answers 503.
func WithHealth(check func() error) Option { return func(s *server) { s.health = check } }

// WithLogger sets the logger for request errors.
func WithLogger(l *slog.Logger) Option { return func(s *server) { s.log = l } }

// WithDefaultTimeZone is the time zone reported for devices whose status
// does not name one.
func WithDefaultTimeZone(tz string) Option { return func(s *server) { s.defaultTZ = tz } }

// WithWindowSizes sets the tumbling-window sizes /api/v1/windows serves
// (the first is the default; default 1m).
func WithWindowSizes(sizes []time.Duration) Option {
	return func(s *server) {
		if len(sizes) > 0 {
			s.windowSizes = sizes
		}
	}
}

// WithPipelines names the window pipelines served by /api/v1/results.
func WithPipelines(names []string) Option {
	return func(s *server) { s.pipelines = slices.Clone(names) }
}

type server struct {
	pipelines   []string
	st          *store.Store
	gatherer    prometheus.Gatherer
	health      func() error
	log         *slog.Logger
	defaultTZ   string
	windowSizes []time.Duration
}

// New returns the HTTP handler for the API over st.
func New(st *store.Store, opts ...Option) http.Handler {
	s := &server{st: st, gatherer: prometheus.NewRegistry(), health: st.Ping, log: slog.Default(), windowSizes: []time.Duration{time.Minute}}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/devices", s.devices)
	mux.HandleFunc("GET /api/v1/windows", s.windows)
	mux.HandleFunc("GET /api/v1/readings", s.readings)
	mux.HandleFunc("GET /api/v1/results", s.results)
	mux.HandleFunc("GET /api/v1/late", s.late)
	mux.HandleFunc("GET /api/v1/deadletters", s.deadLetters)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{ErrorLog: nil}))
	mux.HandleFunc("GET /{$}", s.index)
	return mux
}

// Device is one entry of GET /api/v1/devices.
type Device struct {
	ID             string     `json:"id"`
	Site           string     `json:"site"`
	LastSeen       *time.Time `json:"last_seen"`
	ReadingsStored uint64     `json:"readings_stored"`
	Duplicates     uint64     `json:"duplicates"`
	Online         bool       `json:"online"`
	TimeZone       string     `json:"time_zone,omitempty"`
	AgentVersion   string     `json:"agent_version,omitempty"`
	StatusReceived *time.Time `json:"status_received,omitempty"`
}

// Error is the body of every 4xx/5xx answer.
type Error struct {
	Error     string `json:"error"`
	Parameter string `json:"parameter,omitempty"`
}

func (s *server) listDevices() ([]Device, error) {
	infos, err := s.st.Devices()
	if err != nil {
		return nil, err
	}
	statuses, err := s.st.Statuses()
	if err != nil {
		return nil, err
	}
	byID := map[string]*Device{}
	var out []Device
	for _, in := range infos {
		seen := in.LastSeen
		out = append(out, Device{ID: in.ID, Site: in.Site, LastSeen: &seen, ReadingsStored: in.ReadingsStored, Duplicates: in.Duplicates, TimeZone: s.defaultTZ})
	}
	for i := range out {
		byID[out[i].ID] = &out[i]
	}
	for id, st := range statuses {
		if _, ok := byID[id]; !ok {
			out = append(out, Device{ID: id, Site: st.Site, TimeZone: s.defaultTZ})
		}
	}
	for i := range out {
		if st, ok := statuses[out[i].ID]; ok {
			received := st.Received
			out[i].Online, out[i].AgentVersion, out[i].StatusReceived = st.Online, st.AgentVersion, &received
			if st.TimeZone != "" {
				out[i].TimeZone = st.TimeZone
			}
		}
	}
	slices.SortFunc(out, func(a, b Device) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out, nil
}

func (s *server) devices(w http.ResponseWriter, r *http.Request) {
	out, err := s.listDevices()
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": nonNil(out)})
}

func (s *server) windows(w http.ResponseWriter, r *http.Request) {
	q, perr := s.parseWindowQuery(r)
	if perr != nil {
		writeJSON(w, http.StatusBadRequest, perr)
		return
	}
	ws, err := s.st.Windows(q)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"size": q.Size.String(), "windows": nonNil(ws)})
}

func (s *server) parseWindowQuery(r *http.Request) (store.WindowQuery, *Error) {
	v := r.URL.Query()
	q := store.WindowQuery{Device: v.Get("device"), Channel: v.Get("channel"), Size: time.Minute}
	if q.Device == "" {
		return q, &Error{Parameter: "device", Error: "device is required"}
	}
	if err := wire.ValidateDeviceID(q.Device); err != nil {
		return q, &Error{Parameter: "device", Error: "device " + err.Error()}
	}
	if name := v.Get("quantity"); name != "" {
		qty, err := wire.ParseQuantity(name)
		if err != nil {
			return q, &Error{Parameter: "quantity", Error: err.Error()}
		}
		if q.Channel == "" {
			return q, &Error{Parameter: "quantity", Error: "quantity needs channel"}
		}
		q.Quantity = qty
	}
	if sz := v.Get("size"); sz != "" {
		d, err := time.ParseDuration(sz)
		if err != nil || !slices.Contains(s.windowSizes, d) {
			return q, &Error{Parameter: "size", Error: fmt.Sprintf("size %q: must be one of the configured window sizes %v", sz, s.windowSizes)}
		}
		q.Size = d
	} else if !slices.Contains(s.windowSizes, q.Size) {
		q.Size = s.windowSizes[0]
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if raw := v.Get(p.name); raw != "" {
			t, err := time.Parse(time.RFC3339Nano, raw)
			if err != nil {
				return q, &Error{Parameter: p.name, Error: fmt.Sprintf("%s %q: want RFC 3339 time, e.g. 2026-11-23T10:00:00Z", p.name, raw)}
			}
			*p.dst = t
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.To.After(q.From) {
		return q, &Error{Parameter: "to", Error: "to must be after from"}
	}
	if raw := v.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 100_000 {
			return q, &Error{Parameter: "limit", Error: fmt.Sprintf("limit %q: want an integer 1..100000", raw)}
		}
		q.Limit = n
	}
	return q, nil
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
}

func (s *server) readings(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	device, channel := v.Get("device"), v.Get("channel")
	for _, p := range []struct{ name, val string }{{"device", device}, {"channel", channel}} {
		if p.val == "" {
			writeJSON(w, http.StatusBadRequest, &Error{Parameter: p.name, Error: p.name + " is required"})
			return
		}
	}
	if err := wire.ValidateDeviceID(device); err != nil {
		writeJSON(w, http.StatusBadRequest, &Error{Parameter: "device", Error: "device " + err.Error()})
		return
	}
	qty, err := wire.ParseQuantity(v.Get("quantity"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, &Error{Parameter: "quantity", Error: "quantity: " + err.Error()})
		return
	}
	var from, to time.Time
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		if raw := v.Get(p.name); raw != "" {
			t, err := time.Parse(time.RFC3339Nano, raw)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, &Error{Parameter: p.name, Error: fmt.Sprintf("%s %q: want RFC 3339 time, e.g. 2026-11-23T10:00:00Z", p.name, raw)})
				return
			}
			*p.dst = t
		}
	}
	limit := 10_000
	if raw := v.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 1_000_000 {
			writeJSON(w, http.StatusBadRequest, &Error{Parameter: "limit", Error: fmt.Sprintf("limit %q: want an integer 1..1000000", raw)})
			return
		}
		limit = n
	}
	out := []Reading{}
	errLimit := errors.New("limit reached")
	err = s.st.Readings(device, channel, qty, from, to, func(rd store.Reading) error {
		if len(out) == limit {
			return errLimit
		}
		out = append(out, Reading{Time: rd.Time, Value: rd.Value, SeqEpoch: rd.SeqEpoch, Seq: rd.Seq,
			TimeQuality: rd.TimeQuality.Name(), TimeErrorNs: rd.TimeErrorNs, Received: rd.Received})
		return nil
	})
	if err != nil && !errors.Is(err, errLimit) {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"readings": out, "truncated": errors.Is(err, errLimit)})
}

func (s *server) results(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := store.ResultQuery{Pipeline: v.Get("pipeline"), Device: v.Get("device"), Channel: v.Get("channel")}
	if !slices.Contains(s.pipelines, q.Pipeline) {
		msg := fmt.Sprintf("pipeline %q: want one of %v", q.Pipeline, s.pipelines)
		if q.Pipeline == "" {
			msg = fmt.Sprintf("pipeline is required, one of %v", s.pipelines)
		}
		writeJSON(w, http.StatusBadRequest, &Error{Parameter: "pipeline", Error: msg})
		return
	}
	if q.Device != "" {
		if err := wire.ValidateDeviceID(q.Device); err != nil {
			writeJSON(w, http.StatusBadRequest, &Error{Parameter: "device", Error: "device " + err.Error()})
			return
		}
	} else if q.Channel != "" {
		writeJSON(w, http.StatusBadRequest, &Error{Parameter: "channel", Error: "channel needs device"})
		return
	}
	if name := v.Get("quantity"); name != "" {
		qty, err := wire.ParseQuantity(name)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, &Error{Parameter: "quantity", Error: err.Error()})
			return
		}
		if q.Channel == "" {
			writeJSON(w, http.StatusBadRequest, &Error{Parameter: "quantity", Error: "quantity needs channel"})
			return
		}
		q.Quantity = qty
	}
	switch h := v.Get("history"); h {
	case "", "0", "false":
	case "1", "true":
		q.History = true
	default:
		writeJSON(w, http.StatusBadRequest, &Error{Parameter: "history", Error: fmt.Sprintf("history %q: want 1 or 0", h)})
		return
	}
	var perr *Error
	if q.From, q.To, perr = timeRange(v.Get("from"), v.Get("to")); perr != nil {
		writeJSON(w, http.StatusBadRequest, perr)
		return
	}
	if q.Limit, perr = parseLimit(v.Get("limit"), 100_000); perr != nil {
		writeJSON(w, http.StatusBadRequest, perr)
		return
	}
	rs, err := s.st.Results(q)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pipeline": q.Pipeline, "results": nonNil(rs)})
}

func (s *server) late(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := store.LateQuery{Device: v.Get("device")}
	if q.Device == "" {
		writeJSON(w, http.StatusBadRequest, &Error{Parameter: "device", Error: "device is required"})
		return
	}
	if err := wire.ValidateDeviceID(q.Device); err != nil {
		writeJSON(w, http.StatusBadRequest, &Error{Parameter: "device", Error: "device " + err.Error()})
		return
	}
	var perr *Error
	if q.From, q.To, perr = timeRange(v.Get("from"), v.Get("to")); perr != nil {
		writeJSON(w, http.StatusBadRequest, perr)
		return
	}
	if q.Limit, perr = parseLimit(v.Get("limit"), 100_000); perr != nil {
		writeJSON(w, http.StatusBadRequest, perr)
		return
	}
	ls, err := s.st.LateReadings(q)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"late": nonNil(ls)})
}

// timeRange parses optional RFC 3339 from and to parameters.
func timeRange(fromRaw, toRaw string) (from, to time.Time, perr *Error) {
	for _, p := range []struct {
		name, raw string
		dst       *time.Time
	}{{"from", fromRaw, &from}, {"to", toRaw, &to}} {
		if p.raw == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, p.raw)
		if err != nil {
			return from, to, &Error{Parameter: p.name, Error: fmt.Sprintf("%s %q: want RFC 3339 time, e.g. 2026-11-23T10:00:00Z", p.name, p.raw)}
		}
		*p.dst = t
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return from, to, &Error{Parameter: "to", Error: "to must be after from"}
	}
	return from, to, nil
}

// parseLimit parses an optional limit 1..maxLimit (0 when absent).
func parseLimit(raw string, maxLimit int) (int, *Error) {
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > maxLimit {
		return 0, &Error{Parameter: "limit", Error: fmt.Sprintf("limit %q: want an integer 1..%d", raw, maxLimit)}
	}
	return n, nil
}

func (s *server) deadLetters(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if raw := r.URL.Query().Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 10_000 {
			writeJSON(w, http.StatusBadRequest, &Error{Parameter: "limit", Error: fmt.Sprintf("limit %q: want an integer 1..10000", raw)})
			return
		}
		limit = n
	}
	dls, err := s.st.DeadLetters(limit)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deadletters": nonNil(dls)})
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	if err := s.health(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unhealthy", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>gridedge collector</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}th{background:#eee}</style>
</head><body><h1>gridedge collector</h1>
{{if not .}}<p>No devices yet.</p>{{end}}
{{range .}}<h2>{{.Device.ID}} <small>site {{.Device.Site}} · {{if .Device.Online}}online{{else}}offline{{end}} · {{.Device.ReadingsStored}} readings{{if .Device.LastSeen}} · last seen {{.Device.LastSeen.Format "2006-01-02 15:04:05Z07:00"}}{{end}}</small></h2>
<table><tr><th>channel</th><th>quantity</th><th>start</th><th>count</th><th>mean</th><th>min</th><th>max</th><th>rev</th><th>closed</th></tr>
{{range .Windows}}<tr><td>{{.Channel}}</td><td>{{.Quantity}}</td><td>{{.Start.Format "15:04:05"}}</td><td>{{.Count}}</td><td>{{printf "%.2f" .Mean}}</td><td>{{printf "%.2f" .Min}}</td><td>{{printf "%.2f" .Max}}</td><td>{{.Revision}}</td><td>{{.Closed}}</td></tr>
{{end}}</table>{{end}}
<p><a href="/api/v1/devices">devices</a> · <a href="/api/v1/deadletters">dead letters</a> · <a href="/metrics">metrics</a></p>
</body></html>
`))

func (s *server) index(w http.ResponseWriter, r *http.Request) {
	devs, err := s.listDevices()
	if err != nil {
		s.fail(w, err)
		return
	}
	type row struct {
		Device  Device
		Windows []store.Window
	}
	var rows []row
	for _, d := range devs {
		ws, err := s.st.LatestWindows(d.ID, s.windowSizes[0], 5)
		if err != nil {
			s.fail(w, err)
			return
		}
		rows = append(rows, row{Device: d, Windows: ws})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := indexPage.Execute(w, rows); err != nil {
		s.log.Warn("render index", "err", err)
	}
}

func (s *server) fail(w http.ResponseWriter, err error) {
	s.log.Error("api request failed", "err", err)
	writeJSON(w, http.StatusInternalServerError, &Error{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
