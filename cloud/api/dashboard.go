package api

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"time"
)

// dashRefreshSeconds is how often the page refreshes its content.
const dashRefreshSeconds = 10

var (
	//go:embed dashboard/dashboard.html
	dashHTML string
	//go:embed dashboard/dashboard.css
	dashCSS string
	//go:embed dashboard/dashboard.js
	dashJS string
)

// dashCSP allows the page nothing but itself: its one inline script (by
// hash), inline styles, requests to its own origin. Text a device sent can
// therefore never run as script, even if it escaped escaping.
var dashCSP = "default-src 'none'; script-src 'sha256-" + sha256Base64(dashJS) + "'; style-src 'unsafe-inline'; " +
	"img-src data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

func sha256Base64(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

var dashTemplates = template.Must(template.New("dashboard").Funcs(template.FuncMap{
	"age":   age,
	"clock": func(t time.Time) string { return t.UTC().Format("15:04:05Z") },
	"num":   num,
}).Parse(dashHTML))

// age says how long before now t was, e.g. "12 s ago".
func age(now time.Time, t *time.Time) string {
	d := now.Sub(*t)
	switch {
	case d < 0:
		return "in " + (-d).Round(time.Second).String()
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min ago"
	case d < 48*time.Hour:
		return fmt.Sprintf("%.1f h ago", d.Hours())
	default:
		return t.UTC().Format("2006-01-02 15:04Z")
	}
}

// num prints a counter total; NaN (not known) as a dash.
func num(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// dashboard serves the page at /: the fleet's counts, one page of devices
// with their health, and the selected device's power and energy charts.
func (s *server) dashboard(w http.ResponseWriter, r *http.Request) {
	s.renderDashboard(w, r, "page")
}

// dashboardFragment serves the page's content alone, for its refresh.
func (s *server) dashboardFragment(w http.ResponseWriter, r *http.Request) {
	s.renderDashboard(w, r, "dash")
}

func (s *server) renderDashboard(w http.ResponseWriter, r *http.Request, name string) {
	q, perr := parseDashQuery(r.URL.Query())
	if perr != nil {
		writeJSON(w, http.StatusBadRequest, perr)
		return
	}
	v, err := s.gatherDashboard(q, time.Now())
	if err != nil {
		s.fail(w, err)
		return
	}
	var data any = v
	if name == "page" {
		data = struct {
			V   *dashView
			CSS template.CSS
			JS  template.JS
		}{v, template.CSS(dashCSS), template.JS(dashJS)}
	}
	var buf bytes.Buffer
	if err := dashTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		s.fail(w, fmt.Errorf("render dashboard: %w", err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", dashCSP)
	_, _ = w.Write(buf.Bytes())
}
