package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gridedge/gridedge/cloud/analytics"
	"github.com/gridedge/gridedge/cloud/apitoken"
	"github.com/gridedge/gridedge/cloud/dataset"
	"github.com/gridedge/gridedge/cloud/fleet"
	"github.com/gridedge/gridedge/cloud/store"
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

// WithOfflineAfter sets how long without contact makes a device offline on
// the dashboard, by the fleet gauges' rule (fleet.Online); default
// fleet.DefaultOfflineAfter. The collector passes device_offline_after.
func WithOfflineAfter(d time.Duration) Option { return func(s *server) { s.offlineAfter = d } }

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

// WithAnalyticsPipelines names the pipelines of the anomaly bands and the
// forecasts the dashboard draws (default: anomaly_15m and forecast_15m, the
// analytics' defaults). They are drawn only when also served (WithPipelines).
func WithAnalyticsPipelines(anomaly, forecast string) Option {
	return func(s *server) { s.anomalyPipeline, s.forecastPipeline = anomaly, forecast }
}

// WithTokens requires a bearer token from t on every route but /healthz:
// a read token for the API, the page and the metrics, an admin token for
// raw dead-letter payloads. Without it the API is open (bind it to
// localhost).
func WithTokens(t *apitoken.Tokens) Option { return func(s *server) { s.tokens = t } }

// WithMaxConcurrent bounds the API requests served at once (default 16);
// beyond it requests are answered 503 with Retry-After at once, so a burst
// of large queries cannot pile up open store iterators and buffers.
func WithMaxConcurrent(n int) Option {
	return func(s *server) {
		if n > 0 {
			s.slots = make(chan struct{}, n)
		}
	}
}

type server struct {
	pipelines    []string
	datasetSpecs []dataset.Spec
	st           *store.Store
	res          Results
	gatherer     prometheus.Gatherer
	health       func() error
	log          *slog.Logger
	defaultTZ    string
	windowSizes  []time.Duration
	tokens       *apitoken.Tokens
	slots        chan struct{}
	dash         dashLimits
	// offlineAfter: see WithOfflineAfter.
	offlineAfter time.Duration

	anomalyPipeline, forecastPipeline string
	// anomalies is the fleet's last count of flagged windows, reused for
	// anomalyCountTTL.
	anomalies anomalyCount

	authMu     sync.Mutex
	authLogged time.Time
	authFailed int
}

// New returns the HTTP handler for the API over st.
func New(st *store.Store, opts ...Option) http.Handler {
	s := &server{st: st, gatherer: prometheus.NewRegistry(), health: st.Ping, log: slog.Default(),
		windowSizes: []time.Duration{time.Minute}, slots: make(chan struct{}, 16), dash: defaultDashLimits,
		anomalyPipeline: analytics.DefaultConfig().Anomaly, forecastPipeline: analytics.DefaultConfig().Forecast,
		offlineAfter: fleet.DefaultOfflineAfter}
	for _, o := range opts {
		o(s)
	}
	if s.res == nil {
		s.res = st
	}
	read, admin := s.guard(apitoken.RoleRead), s.guard(apitoken.RoleAdmin)
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/devices", read(s.devices))
	mux.Handle("GET /api/v1/windows", read(s.windows))
	mux.Handle("GET /api/v1/readings", read(s.readings))
	mux.Handle("GET /api/v1/results", read(s.results))
	mux.Handle("GET /api/v1/late", read(s.late))
	mux.Handle("GET /api/v1/datasets", read(s.datasets))
	mux.Handle("GET /api/v1/deadletters", read(s.deadLetters))
	mux.Handle("GET /api/v1/deadletters/{id}", admin(s.deadLetter))
	mux.Handle("GET /api/v1/conflicts", read(s.conflicts))
	mux.HandleFunc("GET /healthz", s.healthz)
	metrics := promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{MaxRequestsInFlight: 2})
	mux.Handle("GET /metrics", s.auth(apitoken.RoleRead, metrics))
	mux.Handle("GET /{$}", read(s.dashboard))
	mux.Handle("GET /dashboard/fragment", read(s.dashboardFragment))
	return mux
}

// guard wraps a handler with the token check of role and the concurrency
// bound.
func (s *server) guard(role apitoken.Role) func(http.HandlerFunc) http.Handler {
	return func(h http.HandlerFunc) http.Handler {
		return s.auth(role, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case s.slots <- struct{}{}:
				defer func() { <-s.slots }()
				h(w, r)
			default:
				w.Header().Set("Retry-After", "1")
				writeJSON(w, http.StatusServiceUnavailable, &Error{Error: "too many API requests at once; retry"})
			}
		}))
	}
}

// auth checks the bearer token when tokens are configured: 401 without a
// valid one, 403 when its role does not allow the route.
func (s *server) auth(role apitoken.Role, h http.Handler) http.Handler {
	if s.tokens == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			s.refuse(w, r, http.StatusUnauthorized, "a bearer token is required (Authorization: Bearer <token>)")
			return
		}
		e, ok := s.tokens.Authenticate(strings.TrimSpace(token))
		if !ok {
			s.refuse(w, r, http.StatusUnauthorized, "invalid token")
			return
		}
		if !e.Role.Allows(role) {
			s.refuse(w, r, http.StatusForbidden, "token "+e.Name+" has role "+string(e.Role)+"; this needs "+string(role))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// refuse answers an authentication failure and logs failures at most
// once every 5 s, with how many there were.
func (s *server) refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.authMu.Lock()
	s.authFailed++
	if now := time.Now(); now.Sub(s.authLogged) >= 5*time.Second {
		s.log.Warn("API request refused", "status", status, "reason", msg, "remote", r.RemoteAddr, "path", r.URL.Path, "refused_since_last_line", s.authFailed)
		s.authLogged, s.authFailed = now, 0
	}
	s.authMu.Unlock()
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gridedge-collector"`)
	}
	writeJSON(w, status, &Error{Error: msg})
}

// Error is the body of every 4xx/5xx answer.
type Error struct {
	Error     string `json:"error"`
	Parameter string `json:"parameter,omitempty"`
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	if err := s.health(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unhealthy", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
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
