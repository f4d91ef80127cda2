// Package observability tests what deploy/prometheus and deploy/grafana
// ship: promtool checks and unit-tests the alert rules (every alert has a
// firing and a silent case), the Prometheus configurations pass promtool,
// the Grafana provisioning and dashboards are consistent, and Debian's
// prometheus, scraping a running collector and agent over a real
// Mosquitto, returns data for every PromQL expression of the rules and of
// the dashboards. It has no code of its own.
package observability
