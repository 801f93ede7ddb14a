package codec

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// mustMsgPack encodes v with the msgpack library, keys sorted.
func mustMsgPack(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("encode msgpack: %v", err)
	}
	return buf.Bytes()
}

// jsonArrays returns n nested JSON arrays: [[...]].
func jsonArrays(n int) []byte {
	return []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
}

// jsonObjects returns n nested JSON objects: {"a":{"a":...1}}.
func jsonObjects(n int) []byte {
	return []byte(strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n))
}

// mpArrays returns n nested MsgPack arrays of one element ending in nil,
// using the header per level that hdr returns.
func mpArrays(n int, hdr []byte) []byte {
	out := make([]byte, 0, n*len(hdr)+1)
	for range n {
		out = append(out, hdr...)
	}
	return append(out, 0xc0)
}

// mpMaps returns n nested one-entry MsgPack maps {"a": {"a": ... nil}}.
func mpMaps(n int) []byte {
	out := make([]byte, 0, n*3+1)
	for range n {
		out = append(out, 0x81, 0xa1, 'a')
	}
	return append(out, 0xc0)
}

// wantKind fails unless err is an *Error of the given kind, at offset off
// (off < -1 skips the offset check).
func wantKind(t *testing.T, err error, kind error, off int) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("got %v, want kind %v", err, kind)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %T (%v), want *codec.Error", err, err)
	}
	if off >= -1 && e.Offset != off {
		t.Fatalf("got offset %d (%v), want %d", e.Offset, err, off)
	}
	return e
}
