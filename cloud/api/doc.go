// Package api serves the collector's read-only HTTP API (JSON under /api/v1),
// health, Prometheus metrics and a small HTML overview page. Handlers read
// the store directly; they never write.
package api
