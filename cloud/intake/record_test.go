package intake

import (
	"bytes"
	"errors"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	in := Record{Kind: KindStatus, ReceivedNs: -5, Site: "home", Payload: []byte{1, 2, 3}}
	out, err := DecodeRecord(AppendRecord(nil, in))
	if err != nil || out.Kind != in.Kind || out.ReceivedNs != in.ReceivedNs || out.Site != in.Site || !bytes.Equal(out.Payload, in.Payload) {
		t.Fatalf("round trip: %+v, %v; want %+v", out, err, in)
	}
	for _, bad := range [][]byte{nil, {9, 1}, {1, 7, 0}, {1, 1}, {1, 1, 2, 50, 'a'}} {
		if _, err := DecodeRecord(bad); !errors.Is(err, ErrRecord) {
			t.Errorf("DecodeRecord(%x) = %v, want ErrRecord", bad, err)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(AppendRecord(nil, Record{Kind: KindData, ReceivedNs: 1, Site: "s", Payload: []byte("x")}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		back, err := DecodeRecord(AppendRecord(nil, r))
		if err != nil || back.Site != r.Site || !bytes.Equal(back.Payload, r.Payload) {
			t.Fatalf("re-encoded record differs: %+v %v", back, err)
		}
	})
}
