// Package regio reads and writes chip registers over I²C with a bounded
// retry, so every I²C driver handles a NACK or a glitch the same way and
// reports it with the chip and register named.
package regio
