// Package modbus is the Modbus-RTU master shared by the serial meter drivers
// (PZEM-004T, Eastron SDM).
//
// It owns everything about the wire that the drivers should not repeat:
// framing and CRC-16 (polynomial 0xA001, initial value 0xFFFF, sent low byte
// first), the 3.5-character silent interval that delimits frames, the
// response timeout, bounded retries of exchanges that failed in transit
// (timeout, CRC error, short or foreign frame), and flushing stale input
// before each request so a late answer to an earlier request can never be
// taken for the answer to this one.
//
// An exception response (function code with bit 7 set) is a definite answer
// from the slave, so it is returned at once as an *ExceptionError and never
// retried.
//
// The protocol facts follow "MODBUS over Serial Line Specification and
// Implementation Guide V1.02" (modbus.org, 2006) and "MODBUS Application
// Protocol Specification V1.1b3" (modbus.org, 2012).
package modbus
