package wire

import (
	"testing"

	"google.golang.org/protobuf/proto"
)

// seeds returns valid and invalid payloads of every message kind.
func seeds(t testing.TB) [][]byte {
	b := validBatch()
	batch, err := EncodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	ack, _ := EncodeAck(&Ack{DeviceId: "dev-1", SeqEpoch: 1, Ranges: RangesOf([]uint64{1, 2, 3, 7})})
	status, _ := EncodeStatus(&Status{DeviceId: "dev-1", Online: true, TimeZone: "UTC", ChannelErrors: map[string]uint64{"a": 1}})
	wrongVersion := proto.Clone(b).(*Batch)
	wrongVersion.SchemaVersion = 9
	wv, _ := proto.Marshal(wrongVersion)
	return [][]byte{batch, ack, status, wv, nil, {}, {0xff}, {0x08, 0x01}, batch[:len(batch)/2], []byte("not protobuf at all")}
}

func FuzzDecodeBatch(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBatch(data)
		if err != nil {
			if b != nil {
				t.Fatal("batch returned with an error")
			}
			return
		}
		if ValidateBatch(b) != nil || b.SchemaVersion != SchemaVersion {
			t.Fatal("accepted an invalid batch")
		}
		// Whatever was accepted re-encodes to an equal, accepted batch.
		again, err := EncodeBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := DecodeBatch(again)
		if err != nil || !proto.Equal(b, b2) {
			t.Fatalf("round trip: %v %v", err, b2)
		}
	})
}

func FuzzDecodeAck(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := DecodeAck(data)
		if err != nil {
			return
		}
		for _, r := range a.Ranges {
			if r.Last < r.First {
				t.Fatal("accepted a reversed range")
			}
		}
		again, err := EncodeAck(a)
		if err != nil {
			t.Fatal(err)
		}
		a2, err := DecodeAck(again)
		if err != nil || !proto.Equal(a, a2) {
			t.Fatalf("round trip: %v %v", err, a2)
		}
	})
}

func FuzzDecodeStatus(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeStatus(data)
		if err != nil {
			return
		}
		again, err := EncodeStatus(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := DecodeStatus(again)
		if err != nil || !proto.Equal(s, s2) {
			t.Fatalf("round trip: %v %v", err, s2)
		}
	})
}
