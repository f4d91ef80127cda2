// Package api serves the collector's read-only HTTP API (JSON under /api/v1),
// health, Prometheus metrics and a small HTML overview page. Handlers read
// the store directly; they never write.
//
// Every list is streamed: elements are read from the store and written one
// at a time through a small buffer, so an answer's memory does not grow with
// its length, and limits bound its time. Dead letters are listed without
// their payloads; one payload is served by id. At most WithMaxConcurrent
// requests are served at once. With WithTokens every route but /healthz
// needs a bearer token (apitoken): read for the API, the page and the
// metrics, admin for raw payloads.
package api
