package modbus

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Function codes used by the drivers.
const (
	FuncReadHoldingRegisters byte = 0x03
	FuncReadInputRegisters   byte = 0x04
	FuncWriteSingleRegister  byte = 0x06

	// exceptionBit is set in the function code of an exception response.
	exceptionBit byte = 0x80
)

// Frame sizes from the serial line specification (section 2.5.1): an RTU
// frame is address (1) + function (1) + data (0..252) + CRC (2).
const (
	minFrameLen = 4
	maxFrameLen = 256
	maxDataLen  = maxFrameLen - minFrameLen
)

// Errors of the wire. Errors returned by Client wrap one of these (or an
// *ExceptionError) with the slave, function and register involved.
var (
	// ErrShortFrame: fewer bytes than a frame needs.
	ErrShortFrame = errors.New("modbus: short frame")
	// ErrCRC: the frame's CRC does not match its content.
	ErrCRC = errors.New("modbus: CRC mismatch")
	// ErrTimeout: no complete response within the response timeout.
	ErrTimeout = errors.New("modbus: response timeout")
	// ErrUnexpectedResponse: a well-formed frame that does not answer the
	// request (other slave address, other function, wrong length).
	ErrUnexpectedResponse = errors.New("modbus: unexpected response")
)

// Exception codes (application protocol specification, section 7).
const (
	ExceptionIllegalFunction    byte = 0x01
	ExceptionIllegalDataAddress byte = 0x02
	ExceptionIllegalDataValue   byte = 0x03
	ExceptionSlaveDeviceFailure byte = 0x04
	ExceptionAcknowledge        byte = 0x05
	ExceptionSlaveDeviceBusy    byte = 0x06
)

// ExceptionError is a slave's exception response: it understood the request
// and refused it.
type ExceptionError struct {
	Slave    byte
	Function byte // the request's function code (without the exception bit)
	Code     byte
}

func (e *ExceptionError) Error() string {
	return fmt.Sprintf("modbus: slave %d function 0x%02x: exception 0x%02x (%s)", e.Slave, e.Function, e.Code, exceptionName(e.Code))
}

func exceptionName(code byte) string {
	switch code {
	case ExceptionIllegalFunction:
		return "illegal function"
	case ExceptionIllegalDataAddress:
		return "illegal data address"
	case ExceptionIllegalDataValue:
		return "illegal data value"
	case ExceptionSlaveDeviceFailure:
		return "slave device failure"
	case ExceptionAcknowledge:
		return "acknowledge"
	case ExceptionSlaveDeviceBusy:
		return "slave device busy"
	}
	return "unknown"
}

// Frame is one decoded RTU frame without its CRC.
type Frame struct {
	Slave    byte
	Function byte
	Data     []byte
}

// CRC16 is the Modbus CRC: reflected polynomial 0xA001, initial value 0xFFFF.
// It is transmitted low byte first.
func CRC16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// Encode returns the RTU bytes of f, CRC appended. It returns an error when
// the data does not fit a frame.
func Encode(f Frame) ([]byte, error) {
	if len(f.Data) > maxDataLen {
		return nil, fmt.Errorf("modbus: %d data bytes exceed the %d a frame carries", len(f.Data), maxDataLen)
	}
	out := make([]byte, 0, len(f.Data)+minFrameLen)
	out = append(out, f.Slave, f.Function)
	out = append(out, f.Data...)
	return binary.LittleEndian.AppendUint16(out, CRC16(out)), nil
}

// Decode checks one complete RTU frame and splits it. A frame whose function
// code has the exception bit set decodes to an *ExceptionError (the Frame is
// still returned). Data aliases b.
func Decode(b []byte) (Frame, error) {
	if len(b) < minFrameLen {
		return Frame{}, fmt.Errorf("%w: %d bytes, a frame has at least %d", ErrShortFrame, len(b), minFrameLen)
	}
	if len(b) > maxFrameLen {
		return Frame{}, fmt.Errorf("%w: %d bytes exceed the %d-byte frame limit", ErrUnexpectedResponse, len(b), maxFrameLen)
	}
	body := b[:len(b)-2]
	if got, want := binary.LittleEndian.Uint16(b[len(b)-2:]), CRC16(body); got != want {
		return Frame{}, fmt.Errorf("%w: frame carries 0x%04x, content gives 0x%04x", ErrCRC, got, want)
	}
	f := Frame{Slave: body[0], Function: body[1], Data: body[2:]}
	if f.Function&exceptionBit != 0 {
		if len(f.Data) != 1 {
			return f, fmt.Errorf("%w: exception frame with %d data bytes, want 1", ErrUnexpectedResponse, len(f.Data))
		}
		return f, &ExceptionError{Slave: f.Slave, Function: f.Function &^ exceptionBit, Code: f.Data[0]}
	}
	return f, nil
}
