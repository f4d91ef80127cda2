package wire

import (
	"errors"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

func validBatch() *Batch {
	return &Batch{
		DeviceId: "dev-1", BootId: "b", SeqEpoch: 0xfeedface,
		Readings: []*Reading{
			{Seq: 1, Channel: "mains", Quantity: Quantity_QUANTITY_ACTIVE_POWER, Value: 230.5, WallNs: 1_700_000_000_000_000_000, TimeQuality: TimeQuality_TIME_QUALITY_SYNCED},
			{Seq: 2, Channel: "sub1", Quantity: Quantity_QUANTITY_ENERGY, Value: 12, WallNs: 1_700_000_001_000_000_000, TimeQuality: TimeQuality_TIME_QUALITY_ESTIMATED, TimeErrorNs: 5e6},
		},
	}
}

func TestBatchRoundTrip(t *testing.T) {
	in := validBatch()
	p, err := EncodeBatch(in)
	if err != nil {
		t.Fatal(err)
	}
	if in.SchemaVersion != SchemaVersion {
		t.Fatalf("EncodeBatch did not stamp the schema version: %d", in.SchemaVersion)
	}
	out, err := DecodeBatch(p)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, out) {
		t.Fatalf("round trip: %v != %v", out, in)
	}
}

func TestDecodeBatchRejects(t *testing.T) {
	mutate := func(f func(*Batch)) []byte {
		b := validBatch()
		b.SchemaVersion = SchemaVersion
		f(b)
		p, err := proto.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name    string
		payload []byte
		want    error
		detail  string
	}{
		{"garbage", []byte{0xff, 0xff, 0xff}, ErrMalformed, ""},
		{"truncated", mutate(func(*Batch) {})[:10], ErrMalformed, ""},
		{"no schema version", mutate(func(b *Batch) { b.SchemaVersion = 0 }), ErrSchemaVersion, "got 0"},
		{"future schema version", mutate(func(b *Batch) { b.SchemaVersion = 2 }), ErrSchemaVersion, "got 2"},
		{"empty device", mutate(func(b *Batch) { b.DeviceId = "" }), ErrInvalid, "device_id"},
		{"device with slash", mutate(func(b *Batch) { b.DeviceId = "a/b" }), ErrInvalid, "device_id"},
		{"no readings", mutate(func(b *Batch) { b.Readings = nil }), ErrInvalid, "no readings"},
		{"channel with wildcard", mutate(func(b *Batch) { b.Readings[1].Channel = "a+" }), ErrInvalid, "reading 1"},
		{"empty channel", mutate(func(b *Batch) { b.Readings[0].Channel = "" }), ErrInvalid, "channel"},
		{"long channel", mutate(func(b *Batch) { b.Readings[0].Channel = strings.Repeat("c", MaxChannelLen+1) }), ErrInvalid, "channel"},
		{"unspecified quantity", mutate(func(b *Batch) { b.Readings[0].Quantity = 0 }), ErrInvalid, "quantity"},
		{"unknown quantity", mutate(func(b *Batch) { b.Readings[0].Quantity = 99 }), ErrInvalid, "quantity"},
		{"NaN", mutate(func(b *Batch) { b.Readings[0].Value = math.NaN() }), ErrInvalid, "finite"},
		{"Inf", mutate(func(b *Batch) { b.Readings[0].Value = math.Inf(-1) }), ErrInvalid, "finite"},
		{"unspecified time quality", mutate(func(b *Batch) { b.Readings[0].TimeQuality = 0 }), ErrInvalid, "time quality"},
		{"negative time error", mutate(func(b *Batch) { b.Readings[0].TimeErrorNs = -1 }), ErrInvalid, "time error"},
	}
	for _, c := range cases {
		b, err := DecodeBatch(c.payload)
		if b != nil || !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.detail) {
			t.Errorf("%s: got %v, %v; want %v containing %q", c.name, b, err, c.want, c.detail)
		}
	}
}

func TestAckAndStatusRoundTripAndReject(t *testing.T) {
	a := &Ack{DeviceId: "dev-1", SeqEpoch: 3, Ranges: RangesOf([]uint64{5, 1, 2, 3, 9}), ContiguousThrough: 3}
	p, err := EncodeAck(a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeAck(p)
	if err != nil || !proto.Equal(got, a) {
		t.Fatalf("ack round trip: %v %v", got, err)
	}
	reversed, _ := proto.Marshal(&Ack{SchemaVersion: 1, DeviceId: "d", Ranges: []*SeqRange{{First: 5, Last: 4}}})
	if _, err := DecodeAck(reversed); !errors.Is(err, ErrInvalid) {
		t.Fatalf("reversed range: %v", err)
	}
	s := &Status{DeviceId: "dev-1", Online: true, TimeZone: "Europe/Paris", ChannelErrors: map[string]uint64{"mains": 2}}
	p, err = EncodeStatus(s)
	if err != nil {
		t.Fatal(err)
	}
	gs, err := DecodeStatus(p)
	if err != nil || !proto.Equal(gs, s) {
		t.Fatalf("status round trip: %v %v", gs, err)
	}
	if _, err := DecodeStatus([]byte{0x08}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated status: %v", err)
	}
	old, _ := proto.Marshal(&Status{SchemaVersion: 7, DeviceId: "d"})
	if _, err := DecodeStatus(old); !errors.Is(err, ErrSchemaVersion) {
		t.Fatalf("status schema: %v", err)
	}
}

func TestRangesOf(t *testing.T) {
	got := RangesOf([]uint64{7, 3, 4, 4, 5, 10, 11, 1})
	want := [][2]uint64{{1, 1}, {3, 5}, {7, 7}, {10, 11}}
	if len(got) != len(want) {
		t.Fatalf("RangesOf = %v", got)
	}
	for i, r := range got {
		if r.First != want[i][0] || r.Last != want[i][1] {
			t.Fatalf("RangesOf = %v, want %v", got, want)
		}
	}
	if RangesOf(nil) != nil {
		t.Fatal("RangesOf(nil) is not nil")
	}
	if r := RangesOf([]uint64{math.MaxUint64, math.MaxUint64 - 1}); len(r) != 1 || r[0].First != math.MaxUint64-1 || r[0].Last != math.MaxUint64 {
		t.Fatalf("RangesOf at the top of the range = %v", r)
	}
}

func TestNames(t *testing.T) {
	for _, n := range QuantityNames() {
		q, err := ParseQuantity(n)
		if err != nil || q.Name() != n {
			t.Fatalf("quantity %q: %v %v", n, q, err)
		}
	}
	if _, err := ParseQuantity("watts"); err == nil {
		t.Fatal("unknown quantity accepted")
	}
	if !TimeQuality_TIME_QUALITY_ESTIMATED.Worse(TimeQuality_TIME_QUALITY_SYNCED) || TimeQuality_TIME_QUALITY_SYNCED.Worse(TimeQuality_TIME_QUALITY_RTC) {
		t.Fatal("time quality order")
	}
}
