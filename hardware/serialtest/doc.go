// Package serialtest is a scripted serial port for driver tests, the serial
// counterpart of periph's i2ctest and spitest playbacks.
//
// A Playback holds the exact request bytes each exchange must write and the
// response bytes the device answers with. A write that differs from the
// script is an error (so a test fails on a wrong request), and a read with
// nothing scripted returns 0 bytes at once, as a port whose read timeout
// expired does: timeouts are tested without waiting.
package serialtest
