package tiered

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/transport"
)

func TestRecordRoundTrip(t *testing.T) {
	cases := []transport.Record{
		{Payload: []byte(`{"a":1}`)},
		{Payload: []byte{}, Key: []byte{}, Format: codec.JSON},
		{Payload: []byte("x"), Key: []byte("k"), Timestamp: time.Unix(1_700_000_000, 123),
			Headers: []transport.Header{{Key: "h1", Value: []byte("v1")}, {Key: "", Value: nil}}},
	}
	for i, rec := range cases {
		got, err := DecodeRecord(EncodeRecord(nil, rec))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !bytes.Equal(got.Payload, rec.Payload) || !bytes.Equal(got.Key, rec.Key) || (got.Key == nil) != (rec.Key == nil) ||
			got.Format != rec.Format || !got.Timestamp.Equal(rec.Timestamp) || len(got.Headers) != len(rec.Headers) {
			t.Fatalf("case %d: got %+v, want %+v", i, got, rec)
		}
		for j, h := range rec.Headers {
			if got.Headers[j].Key != h.Key || !bytes.Equal(got.Headers[j].Value, h.Value) {
				t.Fatalf("case %d header %d: %+v", i, j, got.Headers[j])
			}
		}
	}
}

func TestDecodeRecordBad(t *testing.T) {
	good := EncodeRecord(nil, transport.Record{Payload: []byte("p"), Key: []byte("key"), Headers: []transport.Header{{Key: "a", Value: []byte("b")}}})
	bad := [][]byte{
		nil,
		{1},
		{2, 0, 0, 0, 0},          // unknown version
		{1, 99, 0, 0, 0},         // unknown format
		{1, 0},                   // no timestamp
		{1, 0, 0, 0x7f},          // key longer than the rest
		{1, 0, 0, 0, 0x7f},       // too many headers
		{1, 0, 0, 0, 1, 0x05, 1}, // header key longer than the rest
		good[:len(good)-3],       // header value cut
	}
	for i, b := range bad {
		if _, err := DecodeRecord(b); !errors.Is(err, ErrBadRecord) {
			t.Errorf("case %d (%x): err = %v, want ErrBadRecord", i, b, err)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(EncodeRecord(nil, transport.Record{Payload: []byte("p"), Key: []byte("k"), Timestamp: time.Unix(1, 0),
		Headers: []transport.Header{{Key: "a", Value: []byte("b")}}}))
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := DecodeRecord(b)
		if err != nil {
			return
		}
		again, err := DecodeRecord(EncodeRecord(nil, rec))
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !bytes.Equal(again.Payload, rec.Payload) || len(again.Headers) != len(rec.Headers) {
			t.Fatal("round trip changed the record")
		}
	})
}
