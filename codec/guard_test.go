package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestJSONDepthTable(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{``, 0},
		{`42`, 0},
		{`"str"`, 0},
		{`[]`, 1},
		{`{}`, 1},
		{`[[],[[]]]`, 3},
		{`{"a":{"b":[1,{"c":null}]}}`, 4},
		{`["[[[[[[", "{{{{"]`, 1},
		{`{"k[":"v{","x":"]]]}}}"}`, 1},
		{`["a\"[[[[\"b"]`, 1},
		{`["a\\", [["x"]]]`, 3},   // the string ends at the escaped backslash
		{`["a\\\"[[", [1]]`, 2},   // \\ then \" : still inside the string
		{`["\\\\", []]`, 2},       // two escaped backslashes
		{`{"\"{":"\\"}`, 1},       // escaped quote in a key, backslash value
		{`["\u005b\u005b"]`, 1},   // escaped brackets are text
		{`]]]]`, 0},               // stray closers do not go negative
		{`]][[`, 2},               // and do not hide later depth
		{`["unterminated [[[`, 1}, // the scan stops inside the string
	}
	for _, c := range cases {
		got, err := JSONDepth([]byte(c.in), -1)
		if err != nil || got != c.want {
			t.Errorf("JSONDepth(%s) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestJSONDepthStopsAtLimit(t *testing.T) {
	data := jsonArrays(10)
	d, err := JSONDepth(data, 3)
	wantKind(t, err, ErrTooDeep, 3)
	if d != 4 {
		t.Errorf("depth at the breach = %d, want 4", d)
	}
	if d, err := JSONDepth(data, 10); err != nil || d != 10 {
		t.Errorf("JSONDepth at exactly the limit = %d, %v", d, err)
	}
}

// TestDepthLimitBoundary proves for both formats, for arrays and for
// objects, that exactly MaxDepth levels parse and one more fails with
// ErrTooDeep, at the default and at a custom limit.
func TestDepthLimitBoundary(t *testing.T) {
	type gen struct {
		name string
		make func(n int) []byte
		// offset of the opener of level n+1 in make(n+1)
		off func(n int) int
	}
	gens := []gen{
		{"json arrays", jsonArrays, func(n int) int { return n }},
		{"json objects", jsonObjects, func(n int) int { return n * 5 }},
		{"msgpack fixarray", func(n int) []byte { return mpArrays(n, []byte{0x91}) }, func(n int) int { return n }},
		{"msgpack array16", func(n int) []byte { return mpArrays(n, []byte{0xdc, 0, 1}) }, func(n int) int { return n * 3 }},
		{"msgpack array32", func(n int) []byte { return mpArrays(n, []byte{0xdd, 0, 0, 0, 1}) }, func(n int) int { return n * 5 }},
		{"msgpack map16", func(n int) []byte { return mpArrays(n, []byte{0xde, 0, 1, 0xc0}) }, func(n int) int { return n * 4 }},
		{"msgpack fixmap", mpMaps, func(n int) int { return n * 3 }},
	}
	for _, g := range gens {
		for _, limit := range []int{0, 5, 100} {
			eff := limit
			if eff == 0 {
				eff = DefaultMaxDepth
			}
			opts := ParseOptions{MaxDepth: limit}
			v, err := Parse(g.make(eff), opts)
			if err != nil {
				t.Fatalf("%s: %d levels with limit %d: %v", g.name, eff, eff, err)
			}
			if v.Interface() == nil && !strings.HasPrefix(g.name, "msgpack") {
				t.Fatalf("%s: empty value", g.name)
			}
			_, err = Parse(g.make(eff+1), opts)
			e := wantKind(t, err, ErrTooDeep, g.off(eff))
			if !strings.Contains(e.Error(), "MaxDepth") {
				t.Errorf("%s: error %q does not say how to raise the limit", g.name, e)
			}
		}
	}
}

// TestNestingBombs proves that 5000 levels (and far more) of nesting in
// either format is a per-record ErrTooDeep, not a stack overflow, and that
// the same input with the guard bypassed would have been deep enough to
// matter.
func TestNestingBombs(t *testing.T) {
	bombs := map[string][]byte{
		"json arrays 5000":     jsonArrays(5000),
		"json objects 5000":    jsonObjects(5000),
		"json unclosed 100000": bytes.Repeat([]byte("["), 100000),
		"json mixed 5000":      []byte(strings.Repeat(`[{"a":`, 2500) + "1" + strings.Repeat("}]", 2500)),
		"msgpack arrays 5000":  mpArrays(5000, []byte{0x91}),
		"msgpack maps 5000":    mpMaps(5000),
		"msgpack array32 5000": mpArrays(5000, []byte{0xdd, 0, 0, 0, 1}),
		"msgpack unclosed":     bytes.Repeat([]byte{0x91}, 100000),
	}
	for name, data := range bombs {
		for _, f := range []Format{Auto, JSON, MsgPack} {
			if (f == JSON && strings.HasPrefix(name, "msgpack")) || (f == MsgPack && strings.HasPrefix(name, "json")) {
				continue
			}
			_, err := Parse(data, ParseOptions{Format: f})
			wantKind(t, err, ErrTooDeep, -2)
		}
		if strings.HasPrefix(name, "json") {
			if d, _ := JSONDepth(data, -1); d < 5000 {
				t.Errorf("%s: unguarded depth %d", name, d)
			}
		} else if d, _ := MsgPackDepth(data, MaxDepthLimit); d <= MaxDepthLimit {
			t.Errorf("%s: depth %d not past the limit", name, d)
		}
	}
	// Brackets inside a string are not nesting: a bomb-shaped string
	// value parses.
	v, err := Parse([]byte(`{"s":"`+strings.Repeat("[{", 5000)+`\"]"}`), ParseOptions{})
	if err != nil {
		t.Fatalf("bomb-shaped string: %v", err)
	}
	if s, _ := v.Field("s").Str(); !strings.HasPrefix(s, "[{[{") || !strings.HasSuffix(s, `"]`) {
		t.Fatalf("string value = %.20q", s)
	}
}

// mpAllTypes builds one MsgPack array holding every type, each length form
// at least once.
func mpAllTypes() []byte {
	be16 := func(n int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(n)) }
	be32 := func(n int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(n)) }
	var items [][]byte
	add := func(parts ...[]byte) { items = append(items, bytes.Join(parts, nil)) }
	add([]byte{0x05})                                                             // positive fixint
	add([]byte{0xe0})                                                             // negative fixint
	add([]byte{0xc0}, []byte{0xc2}, []byte{0xc3})                                 // nil false true (three items)
	add([]byte{0xcc, 0xff})                                                       // uint8
	add([]byte{0xcd, 0xff, 0xff})                                                 // uint16
	add([]byte{0xce}, be32(1<<31))                                                // uint32
	add([]byte{0xcf}, binary.BigEndian.AppendUint64(nil, math.MaxUint64))         // uint64
	add([]byte{0xd0, 0x80})                                                       // int8
	add([]byte{0xd1, 0x80, 0x00})                                                 // int16
	add([]byte{0xd2}, be32(0x80000000))                                           // int32
	add([]byte{0xd3}, binary.BigEndian.AppendUint64(nil, 1<<63))                  // int64
	add([]byte{0xca}, be32(int(math.Float32bits(1.5))))                           // float32
	add([]byte{0xcb}, binary.BigEndian.AppendUint64(nil, math.Float64bits(2.25))) // float64
	add([]byte{0xa3, 'a', 'b', 'c'})                                              // fixstr
	add([]byte{0xd9, 2, 'h', 'i'})                                                // str8
	add([]byte{0xda}, be16(3), []byte("xyz"))                                     // str16
	add([]byte{0xdb}, be32(1), []byte("q"))                                       // str32
	add([]byte{0xc4, 2, 1, 2})                                                    // bin8
	add([]byte{0xc5}, be16(1), []byte{9})                                         // bin16
	add([]byte{0xc6}, be32(2), []byte{7, 8})                                      // bin32
	add([]byte{0xd4, 1, 0xaa})                                                    // fixext1
	add([]byte{0xd5, 2, 1, 2})                                                    // fixext2
	add([]byte{0xd6, 3, 1, 2, 3, 4})                                              // fixext4
	add([]byte{0xd7, 4}, make([]byte, 8))                                         // fixext8
	add([]byte{0xd8, 5}, make([]byte, 16))                                        // fixext16
	add([]byte{0xc7, 3, 6, 1, 2, 3})                                              // ext8
	add([]byte{0xc8}, be16(2), []byte{7, 1, 2})                                   // ext16
	add([]byte{0xc9}, be32(1), []byte{0xff, 1})                                   // ext32, type -1
	add([]byte{0xd6, 0xff}, be32(1700000000))                                     // timestamp32
	add([]byte{0x90})                                                             // empty fixarray
	add([]byte{0xdc}, be16(1), []byte{0x01})                                      // array16
	add([]byte{0xdd}, be32(1), []byte{0x02})                                      // array32
	add([]byte{0x80})                                                             // empty fixmap
	add([]byte{0xde}, be16(1), []byte{0xa1, 'k', 0x03})                           // map16
	add([]byte{0xdf}, be32(1), []byte{0xa1, 'm', 0x91, 0x04})                     // map32 holding an array
	add([]byte{0x82, 0x01, 0xa1, 'i', 0xc0, 0xa1, 'n'})                           // map with int and nil keys
	count := 0
	for _, it := range items {
		count++
		if bytes.Equal(it, []byte{0xc0, 0xc2, 0xc3}) {
			count += 2
		}
	}
	out := append([]byte{0xdc}, be16(count)...)
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func TestMsgPackWalkAllTypes(t *testing.T) {
	data := mpAllTypes()
	d, err := MsgPackDepth(data, DefaultMaxDepth)
	if err != nil || d != 3 {
		t.Fatalf("MsgPackDepth = %d, %v; want 3", d, err)
	}
	// The walk agrees with the msgpack library on where the value ends.
	if _, err := Parse(data, ParseOptions{}); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	// Every strict prefix is truncated (the empty one is empty).
	for n := 0; n < len(data); n++ {
		_, err := MsgPackDepth(data[:n], DefaultMaxDepth)
		if n == 0 {
			wantKind(t, err, ErrEmpty, 0)
			continue
		}
		e := wantKind(t, err, ErrTruncated, -2)
		if e.Offset < 0 || e.Offset > n {
			t.Fatalf("prefix %d: offset %d outside the prefix", n, e.Offset)
		}
		if _, err := Parse(data[:n], ParseOptions{Format: MsgPack}); !errors.Is(err, ErrTruncated) {
			t.Fatalf("Parse(prefix %d) = %v, want ErrTruncated", n, err)
		}
	}
	// Any extra byte is trailing data, at the offset where it starts.
	for _, extra := range [][]byte{{0x00}, {0xc1}, data} {
		_, err := MsgPackDepth(append(append([]byte{}, data...), extra...), DefaultMaxDepth)
		wantKind(t, err, ErrTrailingData, len(data))
	}
}

func TestMsgPackWalkErrors(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		kind error
		off  int
	}{
		{"never-used code", []byte{0xc1}, ErrSyntax, 0},
		{"never-used code inside an array", []byte{0x92, 0x01, 0xc1}, ErrSyntax, 2},
		{"array32 declaring 4G items", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, ErrTruncated, 0},
		{"map32 declaring 4G entries", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0x01}, ErrTruncated, 0},
		{"str32 declaring 4 GiB", []byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, ErrTruncated, 0},
		{"bin32 length cut", []byte{0xc6, 0x00, 0x00}, ErrTruncated, 0},
		{"ext32 declaring 4 GiB", []byte{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}, ErrTruncated, 0},
		{"fixext16 short", []byte{0xd8, 0x01, 0x00}, ErrTruncated, 0},
		{"map missing its last value", []byte{0x81, 0xa1, 'a'}, ErrTruncated, 3},
		{"trailing after scalar", []byte{0x01, 0x02}, ErrTrailingData, 1},
		{"two maps", []byte{0x80, 0x80}, ErrTrailingData, 1},
	}
	for _, c := range cases {
		_, err := MsgPackDepth(c.in, DefaultMaxDepth)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Kind != c.kind || e.Offset != c.off {
			t.Errorf("%s: got %v, want %v at %d", c.name, err, c.kind, c.off)
		}
	}
}

// TestMsgPackLargeArray walks and decodes an array32 of a million items.
func TestMsgPackLargeArray(t *testing.T) {
	data := append([]byte{0xdd, 0x00, 0x0f, 0x42, 0x40}, bytes.Repeat([]byte{0x01}, 1_000_000)...)
	if d, err := MsgPackDepth(data, DefaultMaxDepth); err != nil || d != 1 {
		t.Fatalf("MsgPackDepth = %d, %v", d, err)
	}
	v, err := Parse(data, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if arr, ok := v.Interface().([]any); !ok || len(arr) != 1_000_000 || arr[999_999] != int64(1) {
		t.Fatalf("decoded %T of len %d", v.Interface(), len(arr))
	}
}
