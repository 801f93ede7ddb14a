package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// The seed corpora below run as ordinary tests with `go test`; run
// `go test -fuzz=FuzzParseJSON ./codec` (and the others) to explore.

var payloadKinds = []error{ErrEmpty, ErrSyntax, ErrTruncated, ErrTrailingData, ErrTooDeep, ErrUnsupported}

func checkPayloadError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *codec.Error", err, err)
	}
	for _, k := range payloadKinds {
		if e.Kind == k {
			return e
		}
	}
	t.Fatalf("error %v has unexpected kind %v", err, e.Kind)
	return nil
}

func jsonSeeds(f *testing.F) {
	for _, s := range []string{
		``, ` `, `{}`, `[]`, `{"a":1}`, `{"a":1} `, `{"a":1} x`, `{"a":1}{}`, `[1,2,`, `{"a":`,
		`"str"`, `42`, `-0.5e10`, `null`, `true`, `nul`, `{"a":"[{\"}"}`, `["\\", [[]]]`,
		`{"s":"\u0000"}`, "{\"s\":\"\x00\"}", "\x00", `{"big":123456789012345678901234567890}`,
		`{"k":{"k":{"k":[[[]]]}}}`, `{"a":1,"a":2}`, "\xff\xfe", `{"u":"\ud800"}`, `[1e400]`,
		parityJSON,
	} {
		f.Add([]byte(s))
	}
	f.Add(jsonArrays(64))
	f.Add(jsonArrays(65))
	f.Add(jsonObjects(100))
}

func FuzzParseJSON(f *testing.F) {
	jsonSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Parse(data, ParseOptions{Format: JSON})
		depth, derr := JSONDepth(data, -1)
		if derr != nil {
			t.Fatalf("unlimited JSONDepth failed: %v", derr)
		}
		valid := json.Valid(data)
		if err != nil {
			e := checkPayloadError(t, err)
			if e.Format != JSON {
				t.Fatalf("JSON parse reported format %v", e.Format)
			}
			if valid && depth <= DefaultMaxDepth {
				t.Fatalf("valid JSON %q rejected: %v", data, err)
			}
			if e.Kind == ErrTrailingData && !json.Valid(data[:e.Offset]) {
				t.Fatalf("trailing data at %d but %q is not a value", e.Offset, data[:e.Offset])
			}
			if e.Kind == ErrTooDeep && depth <= DefaultMaxDepth {
				t.Fatalf("ErrTooDeep at depth %d", depth)
			}
			return
		}
		if !valid {
			t.Fatalf("invalid JSON %q accepted", data)
		}
		if depth > DefaultMaxDepth {
			t.Fatalf("depth %d accepted", depth)
		}
		out, err := v.Bytes()
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("unmodified value did not forward its bytes: %v", err)
		}
		if !v.IsObject() {
			return
		}
		if err := v.Set("_fuzz", "x"); err != nil {
			t.Fatal(err)
		}
		out, err = v.Bytes()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := Parse(out, ParseOptions{Format: JSON, MaxDepth: MaxDepthLimit})
		if err != nil {
			t.Fatalf("re-encoding %q does not parse: %v", out, err)
		}
		if s, _ := back.Field("_fuzz").Str(); s != "x" || back.Len() != v.Len() {
			t.Fatalf("re-encoding lost fields: %q", out)
		}
	})
}

func msgpackSeeds(f *testing.F) {
	all := mpAllTypes()
	for _, b := range [][]byte{
		nil, {0x00}, {0xc0}, {0xc1}, {0x80}, {0x90}, {0x81, 0xa1, 'a', 0x01}, {0x81, 0xa1, 'a'},
		{0x80, 0x80}, {0xdd, 0xff, 0xff, 0xff, 0xff}, {0xdb, 0, 0, 0, 2, 'a'}, {0xd8, 1},
		{0x82, 0xa1, 'a', 0x01, 0x90, 0x02}, {0x82, 0x01, 0x02, 0xc0, 0xc3},
		all, all[:len(all)/2], append(append([]byte{}, all...), 0x00),
		mpArrays(64, []byte{0x91}), mpArrays(65, []byte{0x91}), mpMaps(70),
	} {
		f.Add(b)
	}
}

// skipsWhole reports whether the msgpack library reads exactly one value
// spanning all of data.
func skipsWhole(data []byte) bool {
	r := bytes.NewReader(data)
	dec := msgpack.NewDecoder(r)
	return dec.Skip() == nil && r.Len() == 0
}

func FuzzParseMsgPack(f *testing.F) {
	msgpackSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Parse(data, ParseOptions{Format: MsgPack})
		depth, derr := MsgPackDepth(data, MaxDepthLimit)
		if err != nil {
			e := checkPayloadError(t, err)
			if e.Format != MsgPack {
				t.Fatalf("MsgPack parse reported format %v", e.Format)
			}
			// Whatever the library reads as one whole value, we read too,
			// unless it is too deep or has a map key we cannot hold.
			if derr == nil && depth <= DefaultMaxDepth && e.Kind != ErrUnsupported && skipsWhole(data) {
				t.Fatalf("% x: library reads it, Parse says %v", data, err)
			}
			if e.Kind == ErrTrailingData {
				if _, err := MsgPackDepth(data[:e.Offset], -1); err != nil {
					t.Fatalf("trailing data at %d but the prefix fails: %v", e.Offset, err)
				}
			}
			return
		}
		if derr != nil || depth > DefaultMaxDepth {
			t.Fatalf("accepted with depth %d, %v", depth, derr)
		}
		if !skipsWhole(data) {
			t.Fatalf("% x accepted, but the library does not read it as one value", data)
		}
		ref, err := refMsgPackDepth(msgpack.NewDecoder(bytes.NewReader(data)))
		if err != nil || ref != depth {
			t.Fatalf("walked depth %d, reference depth %d (%v)", depth, ref, err)
		}
		if got := treeDepth(v.Interface()); got > depth {
			t.Fatalf("walked depth %d, decoded tree depth %d", depth, got)
		}
		out, err := v.Bytes()
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("unmodified value did not forward its bytes: %v", err)
		}
		// Re-encoding is stable: encode, parse, encode gives equal bytes.
		enc1, err := encodeMsgPack(v.Interface())
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := Parse(enc1, ParseOptions{Format: MsgPack})
		if err != nil {
			t.Fatalf("re-encoding % x does not parse: %v", enc1, err)
		}
		enc2, err := encodeMsgPack(back.Interface())
		if err != nil || !bytes.Equal(enc1, enc2) {
			t.Fatalf("re-encoding is not stable: % x vs % x (%v)", enc1, enc2, err)
		}
	})
}

// refMsgPackDepth is a recursive reference for the nesting of one
// MsgPack value, written against the msgpack library's decoder.
func refMsgPackDepth(dec *msgpack.Decoder) (int, error) {
	c, err := dec.PeekCode()
	if err != nil {
		return 0, err
	}
	var n int
	switch {
	case c >= 0x90 && c <= 0x9f, c == 0xdc, c == 0xdd:
		n, err = dec.DecodeArrayLen()
	case c >= 0x80 && c <= 0x8f, c == 0xde, c == 0xdf:
		n, err = dec.DecodeMapLen()
		n *= 2
	default:
		return 0, dec.Skip()
	}
	if err != nil {
		return 0, err
	}
	best := 0
	for range n {
		d, err := refMsgPackDepth(dec)
		if err != nil {
			return 0, err
		}
		best = max(best, d)
	}
	return best + 1, nil
}

// treeDepth is the nesting of a decoded value. Duplicate map keys can
// make it shallower than the payload, never deeper.
func treeDepth(v any) int {
	best := 0
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			best = max(best, treeDepth(e))
		}
	case map[string]any:
		for _, e := range x {
			best = max(best, treeDepth(e))
		}
	case map[any]any:
		for _, e := range x {
			best = max(best, treeDepth(e))
		}
	default:
		return 0
	}
	return best + 1
}

// refJSONDepth is a recursive reference for the nesting of valid JSON,
// written against encoding/json's tokenizer.
func refJSONDepth(dec *json.Decoder) (int, error) {
	tok, err := dec.Token()
	if err != nil {
		return 0, err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return 0, nil
	}
	best := 0
	for dec.More() {
		if delim == '{' {
			if _, err := dec.Token(); err != nil { // the key
				return 0, err
			}
		}
		d, err := refJSONDepth(dec)
		if err != nil {
			return 0, err
		}
		best = max(best, d)
	}
	if _, err := dec.Token(); err != nil { // the closer
		return 0, err
	}
	return best + 1, nil
}

func FuzzDepthGuard(f *testing.F) {
	jsonSeeds(f)
	f.Add([]byte(`{"a":"]]]","b":[["\"["]]}`))
	f.Add([]byte(strings.Repeat(`["\\",`, 30) + "1" + strings.Repeat("]", 30)))
	f.Fuzz(func(t *testing.T, data []byte) {
		depth, err := JSONDepth(data, -1)
		if err != nil {
			t.Fatalf("unlimited JSONDepth failed: %v", err)
		}
		for _, limit := range []int{0, 1, 3, DefaultMaxDepth} {
			d, err := JSONDepth(data, limit)
			if depth <= limit {
				if err != nil || d != depth {
					t.Fatalf("limit %d: got %d, %v; unlimited depth %d", limit, d, err, depth)
				}
				continue
			}
			e := checkPayloadError(t, err)
			if e.Kind != ErrTooDeep || d != limit+1 || (data[e.Offset] != '[' && data[e.Offset] != '{') {
				t.Fatalf("limit %d, depth %d: got %d, %v", limit, depth, d, err)
			}
		}
		if json.Valid(data) && len(bytes.TrimSpace(data)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.UseNumber()
			want, err := refJSONDepth(dec)
			if err != nil {
				t.Fatalf("reference failed on valid JSON: %v", err)
			}
			if want != depth {
				t.Fatalf("JSONDepth %d, reference %d for %q", depth, want, data)
			}
		}
		// The MsgPack walk never panics on the same bytes either.
		_, _ = MsgPackDepth(data, DefaultMaxDepth)
	})
}

func FuzzDetect(f *testing.F) {
	jsonSeeds(f)
	msgpackSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		got := Detect(data)
		trimmed := bytes.TrimLeft(data, " \t\r\n")
		switch got {
		case MsgPack:
			if !isMsgPackContainerLead(data[0]) {
				t.Fatalf("MsgPack for lead byte 0x%02x", data[0])
			}
		case JSON:
			if len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') {
				t.Fatalf("JSON for %q", data)
			}
		case Auto:
			if len(data) > 0 && isMsgPackContainerLead(data[0]) {
				t.Fatalf("lead byte 0x%02x not detected", data[0])
			}
			if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
				t.Fatalf("JSON %q not detected", data)
			}
		default:
			t.Fatalf("Detect returned %v", got)
		}
		d, err := NewDetector(DetectorConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if f, err := d.Check(data); f != got || err != nil {
			t.Fatalf("first Check = %v, %v; Detect = %v", f, err, got)
		}
		// Auto parsing follows the detection and never panics.
		v, err := Parse(data, ParseOptions{})
		if err == nil {
			want := got
			if want == Auto {
				want = JSON
			}
			if v.Format() != want {
				t.Fatalf("parsed as %v, detected %v", v.Format(), got)
			}
		} else {
			checkPayloadError(t, err)
		}
	})
}
