// Package pgtest starts a real PostgreSQL server for tests: Debian's
// PostgreSQL 15 binaries, a cluster initialised in the test's temporary
// directory, listening on a free loopback port and a Unix socket in that
// directory, stopped when the test ends. A test can kill it (SIGKILL) and
// start it again on the same port and data.
//
// PostgreSQL refuses to run as root: when the test runs as root the server
// runs as the unprivileged user nobody.
//
// PostgreSQL comes from Debian's postgresql-15 package; `make test`
// installs it when it is missing. A test that needs the server fails (never
// skips) when it cannot start one, so a missing server cannot make a suite
// pass vacuously.
package pgtest
