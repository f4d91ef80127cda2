// Package mqtttest starts a real Mosquitto broker for tests: on a free
// loopback port, with its own configuration and persistence directory, so a
// test can kill it (SIGKILL) and start it again on the same port and watch
// clients reconnect.
//
// Mosquitto comes from Debian's package; `make test` installs it when it is
// missing. A test that needs the broker fails (never skips) when it cannot
// start one, so a missing broker cannot make a suite pass vacuously.
package mqtttest
