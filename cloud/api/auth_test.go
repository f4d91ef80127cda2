package api

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridedge/gridedge/cloud/apitoken"
	"github.com/gridedge/gridedge/cloud/dataset"
	"github.com/gridedge/gridedge/cloud/store"
)

func tokenServer(t *testing.T) (srv *httptest.Server, read, admin string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.PutDeadLetter(store.DeadLetter{Reason: "malformed", Received: t0, Payload: []byte("secret bytes")}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tokens")
	if read, err = apitoken.Add(path, apitoken.RoleRead, "dashboard"); err != nil {
		t.Fatal(err)
	}
	if admin, err = apitoken.Add(path, apitoken.RoleAdmin, "ops"); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tk, err := apitoken.Load(path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	srv = httptest.NewServer(New(st, WithTokens(tk), WithLogger(quiet), WithPipelines([]string{"p"}),
		WithDatasets([]dataset.Spec{{Pipeline: "p", Columns: []string{"value"}}})))
	t.Cleanup(srv.Close)
	return srv, read, admin
}

func status(t *testing.T, srv *httptest.Server, path, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("%s: 401 without WWW-Authenticate", path)
	}
	return resp.StatusCode
}

func TestTokensGuardEveryRouteButHealth(t *testing.T) {
	srv, read, admin := tokenServer(t)
	for _, path := range []string{"/", "/dashboard/fragment", "/metrics", "/api/v1/devices", "/api/v1/deadletters", "/api/v1/conflicts",
		"/api/v1/windows?device=d", "/api/v1/readings?device=d&channel=m&quantity=energy", "/api/v1/results?pipeline=p",
		"/api/v1/late?device=d", "/api/v1/deadletters/1",
		"/api/v1/datasets?pipeline=p&from=2026-11-23T00:00:00Z&to=2026-11-24T00:00:00Z"} {
		for _, tok := range []string{"", "gdt_guess", read + "x", strings.TrimPrefix(read, "gdt_")} {
			if got := status(t, srv, path, tok); got != 401 {
				t.Errorf("%s with token %q: %d, want 401", path, tok, got)
			}
		}
		if got := status(t, srv, path, admin); got != 200 {
			t.Errorf("%s with the admin token: %d, want 200", path, got)
		}
	}
	if got := status(t, srv, "/api/v1/deadletters", read); got != 200 {
		t.Errorf("dead-letter list with a read token: %d, want 200", got)
	}
	if got := status(t, srv, "/api/v1/deadletters/1", read); got != 403 {
		t.Errorf("a raw payload with a read token: %d, want 403", got)
	}
	if got := status(t, srv, "/healthz", ""); got != 200 {
		t.Errorf("/healthz without a token: %d, want 200 (probes carry no token)", got)
	}
}

// A request beyond the concurrency bound is answered 503 at once.
func TestConcurrencyBound(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := &server{st: st, log: slog.New(slog.NewTextHandler(io.Discard, nil)), slots: make(chan struct{}, 1)}
	release := make(chan struct{})
	entered := make(chan struct{})
	h := s.guard(apitoken.RoleRead)(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	})
	go h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	<-entered
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	close(release)
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("second request while one holds the only slot: %d, want 503 with Retry-After", rec.Code)
	}
}

// FuzzQueryParsing feeds arbitrary query strings to every parameter
// parser: no panic, and an accepted query stays within its bounds.
func FuzzQueryParsing(f *testing.F) {
	for _, q := range []string{"device=dev-1&channel=mains&quantity=active_power&from=2026-11-23T10:00:00Z&to=2026-11-23T11:00:00Z&limit=10",
		"pipeline=p&device=d&history=1", "size=15m&device=d", "from=9999-12-31T23:59:59Z", "limit=99999999999999999999", "after=a&limit=3",
		"device=%00", "from=2262-04-11T23:47:16.854775807Z", "from=1677-09-21T00:12:43.145224192Z"} {
		f.Add(q)
	}
	sizes := []time.Duration{time.Minute, 15 * time.Minute}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		if q, perr := parseWindowQuery(v, sizes); perr == nil {
			if q.Limit < 1 || q.Limit > MaxResults || (q.Size != time.Minute && q.Size != 15*time.Minute) {
				t.Fatalf("window query out of bounds: %+v", q)
			}
			checkRange(t, q.From, q.To)
		}
		if q, perr := parseReadingsQuery(v); perr == nil {
			if q.limit < 1 || q.limit > MaxReadings || q.channel == "" || q.device == "" {
				t.Fatalf("readings query out of bounds: %+v", q)
			}
			checkRange(t, q.from, q.to)
		}
		if q, perr := parseResultQuery(v, []string{"p"}); perr == nil {
			if q.Limit < 1 || q.Limit > MaxResults || q.Pipeline != "p" {
				t.Fatalf("result query out of bounds: %+v", q)
			}
			checkRange(t, q.From, q.To)
		}
		if q, perr := parseLateQuery(v); perr == nil {
			if q.Limit < 1 || q.Limit > MaxResults {
				t.Fatalf("late query out of bounds: %+v", q)
			}
			checkRange(t, q.From, q.To)
		}
		if q, perr := parseConflictQuery(v); perr == nil && (q.Limit < 1 || q.Limit > MaxConflicts) {
			t.Fatalf("conflict query out of bounds: %+v", q)
		}
		if q, perr := parseDevicesQuery(v); perr == nil && (q.limit < 1 || q.limit > MaxDevices) {
			t.Fatalf("devices query out of bounds: %+v", q)
		}
	})
}

// checkRange: accepted bounds never wrap when turned into nanoseconds.
func checkRange(t *testing.T, from, to time.Time) {
	t.Helper()
	for _, tm := range []time.Time{from, to} {
		if !tm.IsZero() && !time.Unix(0, tm.UnixNano()).Equal(tm) {
			t.Fatalf("time %v accepted but wraps to %v", tm, time.Unix(0, tm.UnixNano()))
		}
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		t.Fatalf("to %v not after from %v", to, from)
	}
}
