// Package host gives drivers real buses: a sensor.Env built on periph's
// host drivers (I²C, SPI and GPIO through the Linux character devices and
// the SoC drivers periph detects) and a Linux serial port configured with
// termios (raw mode, baud rate, parity, VMIN/VTIME read timeout, input
// flush) through golang.org/x/sys/unix, without cgo.
//
// Several channels on one RS-485 line (a PZEM and an SDM on /dev/ttyUSB0)
// share one open port: OpenSerial hands each a reference to the same file
// descriptor and the reference implements sync.Locker, which the Modbus
// client takes for each exchange so frames of different meters never
// interleave.
//
// A port name may carry its framing after a colon: "/dev/ttyUSB0:8E1" for
// meters configured for even parity. The default is 8N1.
package host
