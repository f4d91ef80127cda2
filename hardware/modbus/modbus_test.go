package modbus

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gridedge/gridedge/hardware/serialtest"
)

// rtu appends the CRC to b (CRC16 itself is pinned to published vectors in
// TestCRC16, so building frames with it is not circular).
func rtu(b ...byte) []byte {
	f, err := Encode(Frame{Slave: b[0], Function: b[1], Data: b[2:]})
	if err != nil {
		panic(err)
	}
	return f
}

func TestCRC16(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want uint16
	}{
		// Serial line specification V1.02, appendix B: frame 02 07 is sent as
		// 02 07 41 12, i.e. CRC 0x1241 (low byte 0x41 first).
		{"spec appendix", []byte{0x02, 0x07}, 0x1241},
		// PZEM-004T v3 manual: "read all" request 01 04 00 00 00 0A 70 0D.
		{"pzem read all", []byte{0x01, 0x04, 0x00, 0x00, 0x00, 0x0A}, 0x0D70},
		// Read one holding register 0 of slave 1: 01 03 00 00 00 01 84 0A.
		{"read holding", []byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x01}, 0x0A84},
		{"empty", nil, 0xFFFF},
	} {
		if got := CRC16(tc.in); got != tc.want {
			t.Errorf("%s: CRC16(% x) = 0x%04x, want 0x%04x", tc.name, tc.in, got, tc.want)
		}
	}
	if got, want := rtu(0x02, 0x07), []byte{0x02, 0x07, 0x41, 0x12}; !bytes.Equal(got, want) {
		t.Errorf("Encode = % x, want % x (CRC low byte first)", got, want)
	}
}

func TestDecode(t *testing.T) {
	good := rtu(0x01, 0x04, 0x02, 0x12, 0x34)
	f, err := Decode(good)
	if err != nil || f.Slave != 1 || f.Function != 4 || !bytes.Equal(f.Data, []byte{0x02, 0x12, 0x34}) {
		t.Fatalf("Decode(good) = %+v, %v", f, err)
	}

	bad := bytes.Clone(good)
	bad[3] ^= 0x01
	if _, err := Decode(bad); !errors.Is(err, ErrCRC) {
		t.Errorf("flipped bit: err = %v, want ErrCRC", err)
	}
	if _, err := Decode(good[:3]); !errors.Is(err, ErrShortFrame) {
		t.Errorf("3 bytes: err = %v, want ErrShortFrame", err)
	}

	_, err = Decode(rtu(0x01, 0x84, 0x02))
	var exc *ExceptionError
	if !errors.As(err, &exc) || exc.Slave != 1 || exc.Function != 0x04 || exc.Code != ExceptionIllegalDataAddress {
		t.Fatalf("exception frame: err = %v", err)
	}
	if _, err := Decode(rtu(0x01, 0x84, 0x02, 0x00)); !errors.Is(err, ErrUnexpectedResponse) {
		t.Errorf("exception with 2 data bytes: err = %v, want ErrUnexpectedResponse", err)
	}
}

func TestSilentInterval(t *testing.T) {
	// 3.5 characters × 11 bits at 9600 baud = 38.5 / 9600 s = 4.0104 ms.
	if got, want := SilentInterval(9600), 4010416*time.Nanosecond; got != want {
		t.Errorf("SilentInterval(9600) = %v, want %v", got, want)
	}
	// Fixed 1.75 ms above 19200 baud (serial line spec 2.5.1.1).
	if got := SilentInterval(115200); got != 1750*time.Microsecond {
		t.Errorf("SilentInterval(115200) = %v, want 1.75ms", got)
	}
}

func newClient(p *serialtest.Playback, opts ...Option) *Client {
	return NewClient(p, append([]Option{WithBaud(115200), WithResponseTimeout(5 * time.Second)}, opts...)...)
}

func TestReadInputRegisters(t *testing.T) {
	p := &serialtest.Playback{
		// A late answer from an earlier request is waiting: it must be
		// flushed, not read as this answer.
		Stale: rtu(0x01, 0x04, 0x04, 0xFF, 0xFF, 0xFF, 0xFF),
		Chunk: 1, // the response trickles in byte by byte
		Ops: []serialtest.IO{{
			W: []byte{0x01, 0x04, 0x00, 0x00, 0x00, 0x02, 0x71, 0xCB},
			R: rtu(0x01, 0x04, 0x04, 0x08, 0x98, 0x00, 0x0A),
		}},
	}
	regs, err := newClient(p).ReadInputRegisters(context.Background(), 1, 0x0000, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) != 2 || regs[0] != 0x0898 || regs[1] != 0x000A {
		t.Errorf("regs = %#04x, want [0x0898 0x000a]", regs)
	}
	if err := p.Done(); err != nil {
		t.Error(err)
	}
}

func TestRetryAfterTransitErrors(t *testing.T) {
	req := rtu(0x07, 0x03, 0x00, 0x10, 0x00, 0x01)
	good := rtu(0x07, 0x03, 0x02, 0x12, 0x34)
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 0xFF
	p := &serialtest.Playback{Ops: []serialtest.IO{
		{W: req, R: badCRC},
		{W: req, R: rtu(0x08, 0x03, 0x02, 0x12, 0x34)}, // another slave answered
		{W: req, R: good},
	}}
	c := newClient(p)
	regs, err := c.ReadHoldingRegisters(context.Background(), 7, 0x0010, 1)
	if err != nil {
		t.Fatal(err)
	}
	if regs[0] != 0x1234 {
		t.Errorf("reg = %#04x, want 0x1234", regs[0])
	}
	if got := c.Retries(); got != 2 {
		t.Errorf("Retries = %d, want 2", got)
	}
	if err := p.Done(); err != nil {
		t.Error(err)
	}
	if got := p.Flushes(); got != 3 {
		t.Errorf("Flushes = %d, want one per attempt (3)", got)
	}
}

func TestWildcardAddress(t *testing.T) {
	req := rtu(0xF8, 0x04, 0x00, 0x00, 0x00, 0x01)
	resp := rtu(0x05, 0x04, 0x02, 0x00, 0x07)
	p := &serialtest.Playback{Ops: []serialtest.IO{{W: req, R: resp}, {W: req, R: resp}}}
	if _, err := newClient(p, WithAttempts(1)).ReadInputRegisters(context.Background(), 0xF8, 0, 1); !errors.Is(err, ErrUnexpectedResponse) {
		t.Errorf("without wildcard: err = %v, want ErrUnexpectedResponse", err)
	}
	regs, err := newClient(p, WithAttempts(1), WithWildcardAddress(0xF8)).ReadInputRegisters(context.Background(), 0xF8, 0, 1)
	if err != nil || regs[0] != 7 {
		t.Errorf("with wildcard: %v, %v", regs, err)
	}
}

func TestTimeoutIsBounded(t *testing.T) {
	req := rtu(0x01, 0x04, 0x00, 0x00, 0x00, 0x01)
	p := &serialtest.Playback{Ops: []serialtest.IO{{W: req}, {W: req}}}
	_, err := newClient(p, WithAttempts(2)).ReadInputRegisters(context.Background(), 1, 0, 1)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if err := p.Done(); err != nil {
		t.Errorf("want exactly 2 attempts: %v", err)
	}
}

func TestShortFrame(t *testing.T) {
	req := rtu(0x01, 0x04, 0x00, 0x00, 0x00, 0x01)
	full := rtu(0x01, 0x04, 0x02, 0x00, 0x01)
	p := &serialtest.Playback{Ops: []serialtest.IO{{W: req, R: full[:5]}}}
	_, err := newClient(p, WithAttempts(1)).ReadInputRegisters(context.Background(), 1, 0, 1)
	if !errors.Is(err, ErrShortFrame) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrShortFrame and ErrTimeout", err)
	}
}

func TestExceptionIsNotRetried(t *testing.T) {
	p := &serialtest.Playback{Ops: []serialtest.IO{{
		W: rtu(0x01, 0x04, 0x00, 0x64, 0x00, 0x01),
		R: rtu(0x01, 0x84, ExceptionIllegalDataAddress),
	}}}
	c := newClient(p)
	_, err := c.ReadInputRegisters(context.Background(), 1, 0x0064, 1)
	var exc *ExceptionError
	if !errors.As(err, &exc) || exc.Code != ExceptionIllegalDataAddress || exc.Function != FuncReadInputRegisters {
		t.Fatalf("err = %v, want illegal data address exception", err)
	}
	if err := p.Done(); err != nil {
		t.Error(err)
	}
	if c.Retries() != 0 {
		t.Errorf("Retries = %d, want 0", c.Retries())
	}
}

func TestWriteSingleRegister(t *testing.T) {
	// Set slave address register 0x0002 to 5 on slave 1.
	req := rtu(0x01, 0x06, 0x00, 0x02, 0x00, 0x05)
	p := &serialtest.Playback{Ops: []serialtest.IO{
		{W: req, R: req},
		{W: req, R: rtu(0x01, 0x06, 0x00, 0x02, 0x00, 0x06)},
	}}
	c := newClient(p, WithAttempts(1))
	if err := c.WriteSingleRegister(context.Background(), 1, 0x0002, 5); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteSingleRegister(context.Background(), 1, 0x0002, 5); !errors.Is(err, ErrUnexpectedResponse) {
		t.Errorf("wrong echo: err = %v, want ErrUnexpectedResponse", err)
	}
}

func TestBadRequests(t *testing.T) {
	c := newClient(&serialtest.Playback{})
	if _, err := c.ReadInputRegisters(context.Background(), 1, 0, 126); err == nil {
		t.Error("126 registers accepted")
	}
	if _, err := c.Call(context.Background(), 1, 0x42, make([]byte, 253), 0); err == nil {
		t.Error("oversized request accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.ReadInputRegisters(ctx, 1, 0, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: err = %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(rtu(0x01, 0x04, 0x04, 0x08, 0x98, 0x00, 0x0A))
	f.Add(rtu(0x01, 0x84, 0x02))
	f.Add([]byte{0x02, 0x07, 0x41, 0x12})
	f.Add([]byte{0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		var exc *ExceptionError
		if err != nil && !errors.As(err, &exc) {
			if !errors.Is(err, ErrShortFrame) && !errors.Is(err, ErrCRC) && !errors.Is(err, ErrUnexpectedResponse) {
				t.Fatalf("Decode(% x): unclassified error %v", b, err)
			}
			return
		}
		// Whatever decodes must re-encode to the same bytes.
		again, err := Encode(fr)
		if err != nil {
			t.Fatalf("re-encode of decoded frame: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("round trip: % x -> % x", b, again)
		}
	})
}
