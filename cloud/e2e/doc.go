// Package e2e holds gridedge's system tests: the simulator's virtual meters
// (the real agent pipeline) publishing through a real Mosquitto broker to the
// real gridedge-collector binary, with the broker and the collector killed
// mid-run, and every stored reading and window checked against the
// simulator's truth file.
//
// The package has no non-test code beyond this comment.
package e2e
