// Package api serves the collector's read-only HTTP API (JSON under /api/v1),
// health, Prometheus metrics and the dashboard at / (server-drawn SVG
// charts, device health, search and paging, the analytics' anomaly bands
// and forecasts). The dashboard's data is gathered in one place
// (gatherDashboard in dashdata.go fills a dashView; a new chart is a field
// and a gather step there, as dashenergy.go and dashbands.go are), svg.go
// and svgband.go draw, and the
// templates in dashboard/ only print. Handlers read the store directly;
// they never write.
//
// Every list is streamed: elements are read from the store and written one
// at a time through a small buffer, so an answer's memory does not grow with
// its length, and limits bound its time. Dead letters are listed without
// their payloads; one payload is served by id. At most WithMaxConcurrent
// requests are served at once. With WithTokens every route but /healthz
// needs a bearer token (apitoken): read for the API, the page and the
// metrics, admin for raw payloads. The dashboard's reads are bounded per
// request (devices scanned, rows, chart series and points, readings,
// counts, anomaly results scanned).
package api
