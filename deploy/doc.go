// Package deploy holds what it takes to run gridedge in production: systemd
// units, the default agent configuration, the Mosquitto configuration, the
// collector's container image, PostgreSQL's init script (deploy/postgres),
// Compose and Kubernetes manifests, and the packaging program (deploy/pkg).
// It has no code of its own; its tests check that every file parses, that
// the units carry the directives the product relies on, and run
// PostgreSQL's init script against PostgreSQL 15.
package deploy
