package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestParseOptionsValidate(t *testing.T) {
	good := []ParseOptions{{}, {Format: JSON, MaxDepth: 1}, {Format: MsgPack, MaxDepth: MaxDepthLimit}}
	for _, o := range good {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	bad := map[string]ParseOptions{
		"MaxDepth":         {MaxDepth: -1},
		"MaxDepth is 1025": {MaxDepth: MaxDepthLimit + 1},
		"Format":           {Format: Format(4)},
	}
	for want, o := range bad {
		err := o.Validate()
		if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want ErrInvalidOptions naming %s", o, err, want)
		}
		if _, err := Parse([]byte(`{}`), o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("Parse with %+v: %v", o, err)
		}
	}
}

func TestParseEmpty(t *testing.T) {
	for _, f := range []Format{Auto, JSON, MsgPack} {
		for _, in := range [][]byte{nil, {}} {
			_, err := Parse(in, ParseOptions{Format: f})
			wantKind(t, err, ErrEmpty, 0)
		}
	}
	for _, f := range []Format{Auto, JSON} {
		_, err := Parse([]byte(" \n\t\r "), ParseOptions{Format: f})
		e := wantKind(t, err, ErrEmpty, 0)
		if e.Format != JSON {
			t.Errorf("whitespace payload parsed as %v", e.Format)
		}
	}
	// Whitespace is not empty MsgPack: 0x20 is the integer 32.
	v, err := Parse([]byte(" "), ParseOptions{Format: MsgPack})
	if err != nil || v.Interface() != int64(32) {
		t.Fatalf("MsgPack 0x20 = %v, %v", v, err)
	}
}

func TestParseAutoDetects(t *testing.T) {
	mp := mustMsgPack(t, map[string]any{"level": "warn"})
	v, err := Parse(mp, ParseOptions{})
	if err != nil || v.Format() != MsgPack {
		t.Fatalf("msgpack map with Auto: %v, %v", v, err)
	}
	if s, _ := v.Field("level").Str(); s != "warn" {
		t.Fatalf("level = %q", s)
	}
	// Undetermined payloads are JSON: scalars parse, garbage fails.
	for in, want := range map[string]any{`42`: json.Number("42"), ` "s" `: "s", `null`: nil, `true`: true} {
		v, err := Parse([]byte(in), ParseOptions{})
		if err != nil || v.Format() != JSON || v.Interface() != want {
			t.Errorf("Parse(%s) = %#v, %v", in, v, err)
		}
		if v.IsObject() || v.Field("x").Exists() || v.Len() != 0 {
			t.Errorf("scalar %s reported fields", in)
		}
	}
	_, err = Parse([]byte("\x00\x01binary"), ParseOptions{})
	e := wantKind(t, err, ErrSyntax, 0)
	if e.Format != JSON {
		t.Errorf("garbage parsed as %v", e.Format)
	}
	// A forced format is not second-guessed.
	_, err = Parse(mp, ParseOptions{Format: JSON})
	wantKind(t, err, ErrSyntax, 0)
	_, err = Parse([]byte(`{"a":1}`), ParseOptions{Format: MsgPack})
	wantKind(t, err, ErrTrailingData, 1) // 0x7b is the integer 123
}

func TestJSONTrailing(t *testing.T) {
	ok := []string{
		`{"a":1}`,
		"{\"a\":1}  \n\t\r ",
		"\r\n  [1,2]\n",
		`"str"  `,
		`12 `,
	}
	for _, in := range ok {
		if _, err := Parse([]byte(in), ParseOptions{Format: JSON}); err != nil {
			t.Errorf("Parse(%q): %v", in, err)
		}
	}
	bad := []struct {
		in  string
		off int
	}{
		{`{"a":1} x`, 8},
		{`{"a":1}{"b":2}`, 7},
		{`{"a":1}]`, 7},
		{"[1]\n\n[2]", 5},
		{`"s" "t"`, 4},
		{`{"a":1},`, 7},
		{"{\"a\":1}\x00", 7},
		{"{\"a\":1}\f", 7}, // form feed is not JSON whitespace
		{`{"a":"}"} }`, 10},
	}
	for _, c := range bad {
		_, err := Parse([]byte(c.in), ParseOptions{})
		wantKind(t, err, ErrTrailingData, c.off)
		if !errors.Is(err, ErrSyntax) {
			t.Errorf("trailing-data error %v does not match ErrSyntax", err)
		}
	}
}

func TestJSONSyntaxErrors(t *testing.T) {
	cases := []struct {
		in   string
		kind error
		off  int
	}{
		{`{"a":}`, ErrSyntax, 5},
		{`{"a":1,}`, ErrSyntax, 7},
		{`{'a':1}`, ErrSyntax, 1},
		{`{"a" 1}`, ErrSyntax, 5},
		{`[1 2]`, ErrSyntax, 3},
		{`nul`, ErrSyntax, -2},
		{`{"a":1`, ErrTruncated, 6},
		{`{"a":`, ErrTruncated, 5},
		{`["abc`, ErrTruncated, 5},
		{`{"a":[1,{"b":2}`, ErrTruncated, 15},
		{"{\"a\":\"x\x00y\"}", ErrSyntax, 7},
		{"[\"ok\",\"\x1f\"]", ErrSyntax, 7},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.in), ParseOptions{})
		wantKind(t, err, c.kind, c.off)
	}
}

// TestErrorsDoNotQuotePayload proves a parse error, which becomes a
// dead-letter reason and a log line, never carries payload bytes.
func TestErrorsDoNotQuotePayload(t *testing.T) {
	inputs := [][]byte{
		[]byte(`{"password":"hunter2" "x":1}`),
		[]byte(`{"password":"hunter2"} trailing`),
		[]byte(`{"password":"hunter2`),
		[]byte("{\"password\":\"hunter2\x01\"}"),
		append(mustMsgPack(t, map[string]string{"password": "hunter2"}), 0xc1),
		mustMsgPack(t, map[string]string{"password": "hunter2"})[:12],
	}
	for _, in := range inputs {
		_, err := Parse(in, ParseOptions{})
		if err == nil {
			t.Fatalf("Parse(%q) succeeded", in)
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "password") {
			t.Errorf("error quotes the payload: %v", err)
		}
	}
}

func TestNULBytes(t *testing.T) {
	// An escaped NUL is a valid character of a JSON string.
	v, err := Parse([]byte(`{"s":"a\u0000b"}`), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := v.Field("s").Str(); s != "a\x00b" {
		t.Errorf("s = %q", s)
	}
	// A raw NUL inside a string, after the value or as the payload fails.
	for in, kind := range map[string]error{
		"{\"s\":\"a\x00b\"}": ErrSyntax,
		"{\"s\":1}\x00":      ErrTrailingData,
		"\x00\x00\x00":       ErrSyntax,
		"\x00":               ErrSyntax,
		"{\"a\x00\":1}":      ErrSyntax,
	} {
		_, err := Parse([]byte(in), ParseOptions{})
		wantKind(t, err, kind, -2)
	}
	// MsgPack strings and binary carry NUL bytes as data.
	mp := mustMsgPack(t, map[string]any{"s": "a\x00b", "b": []byte{0, 0, 0}})
	v, err = Parse(mp, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := v.Field("s").Str(); s != "a\x00b" {
		t.Errorf("s = %q", s)
	}
	if b, _ := v.Field("b").Interface().([]byte); !bytes.Equal(b, []byte{0, 0, 0}) {
		t.Errorf("b = %v", b)
	}
	// A lone MsgPack 0x00 is the integer 0, two of them trailing data.
	if v, err := Parse([]byte{0}, ParseOptions{Format: MsgPack}); err != nil || v.Interface() != int64(0) {
		t.Errorf("0x00 = %v, %v", v, err)
	}
	_, err = Parse([]byte{0, 0}, ParseOptions{Format: MsgPack})
	wantKind(t, err, ErrTrailingData, 1)
}

func TestOneMegabytePayload(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	obj := map[string]any{"level": "info", "blob": big, "n": int64(7)}
	items := make([]any, 0, 20000)
	for i := range 20000 {
		items = append(items, map[string]any{"i": int64(i)})
	}
	obj["items"] = items

	js, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	mp := mustMsgPack(t, obj)
	for _, data := range [][]byte{js, mp} {
		if len(data) < 1<<20 {
			t.Fatalf("payload only %d bytes", len(data))
		}
		v, err := Parse(data, ParseOptions{})
		if err != nil {
			t.Fatalf("%d-byte payload: %v", len(data), err)
		}
		if s, _ := v.Field("blob").Str(); s != big {
			t.Fatalf("blob of %d bytes came back as %d", len(big), len(s))
		}
		if n, _ := v.Field("n").Int(); n != 7 {
			t.Fatalf("n = %d", n)
		}
		if arr, _ := v.Field("items").Interface().([]any); len(arr) != 20000 {
			t.Fatalf("items has %d entries", len(arr))
		}
		if err := v.Set("seen", true); err != nil {
			t.Fatal(err)
		}
		out, err := v.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(out, ParseOptions{Format: v.Format()})
		if err != nil {
			t.Fatalf("re-encoded payload: %v", err)
		}
		if b, _ := back.Field("seen").Bool(); !b || back.Len() != 5 {
			t.Fatalf("re-encoded payload lost fields: %d", back.Len())
		}
	}
}

// TestInvalidMixedWithValid parses a block where every other record is
// broken: exactly the valid ones parse, in order, and each bad one is its
// own typed error.
func TestInvalidMixedWithValid(t *testing.T) {
	bad := [][]byte{
		[]byte(`{"a":}`),
		[]byte(`not json`),
		[]byte(`{"a":1} extra`),
		[]byte(`{"a":1`),
		{},
		jsonArrays(5000),
		{0xde, 0x00},
		append(mustMsgPack(t, map[string]any{"a": 1}), 0x00),
		{0xc1},
		[]byte("\x00\xff\xfe"),
	}
	var block [][]byte
	for i, b := range bad {
		block = append(block, []byte(fmt.Sprintf(`{"seq":%d,"level":"info"}`, i)))
		block = append(block, b)
	}
	var got []int64
	errs := 0
	for i, rec := range block {
		v, err := Parse(rec, ParseOptions{})
		if i%2 == 1 {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("record %d (%q): %v, want a *codec.Error", i, rec, err)
			}
			errs++
			continue
		}
		if err != nil {
			t.Fatalf("valid record %d: %v", i, err)
		}
		n, _ := v.Field("seq").Int()
		got = append(got, n)
	}
	if errs != len(bad) || len(got) != len(bad) {
		t.Fatalf("%d errors and %d values from %d records", errs, len(got), len(block))
	}
	for i, n := range got {
		if n != int64(i) {
			t.Fatalf("values out of order: %v", got)
		}
	}
}

func TestMsgPackNonStringKeys(t *testing.T) {
	// {1: "one", "name": "x", nil: true}
	data := []byte{0x83, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'x', 0x01, 0xa3, 'o', 'n', 'e', 0xc0, 0xc3}
	v, err := Parse(data, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !v.IsObject() || v.Len() != 3 {
		t.Fatalf("object %v with %d fields", v.IsObject(), v.Len())
	}
	if s, _ := v.Field("name").Str(); s != "x" {
		t.Errorf("name = %q", s)
	}
	m := v.Interface().(map[any]any)
	if m[int64(1)] != "one" || m[nil] != true {
		t.Errorf("decoded %#v", m)
	}
	if err := v.Set("added", int64(2)); err != nil {
		t.Fatal(err)
	}
	out, err := v.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := back.Field("added").Int(); n != 2 || back.Interface().(map[any]any)[int64(1)] != "one" {
		t.Errorf("round trip gave %#v", back.Interface())
	}
	// Keys that cannot be map keys are unsupported, with the key's offset.
	for _, key := range [][]byte{{0x90}, {0x80}, {0xd4, 1, 1}} {
		in := append(append([]byte{0x82, 0xa1, 'a', 0x01}, key...), 0x02)
		_, err := Parse(in, ParseOptions{})
		wantKind(t, err, ErrUnsupported, 4)
	}
}

// TestParseConcurrent parses both formats from many goroutines with one
// shared interner (run with -race).
func TestParseConcurrent(t *testing.T) {
	in, err := NewInterner(InternerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	js := []byte(`{"level":"info","service":"api","n":1}`)
	mp := mustMsgPack(t, map[string]any{"level": "info", "service": "api", "n": 1})
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				data := js
				if w%2 == 1 {
					data = mp
				}
				v, err := Parse(data, ParseOptions{Interner: in})
				if err != nil {
					errc <- err
					return
				}
				if s, _ := v.Field("service").Str(); s != "api" {
					errc <- fmt.Errorf("service = %q", s)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if in.Len() != 3 {
		t.Errorf("interner holds %d names, want 3", in.Len())
	}
}

func TestZeroCopy(t *testing.T) {
	data := []byte(`{"level":"info","msg":"hello"}`)
	v, err := Parse(data, ParseOptions{ZeroCopy: true})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := v.Field("msg").Str(); s != "hello" {
		t.Fatalf("msg = %q", s)
	}
	// The copying default is independent of later changes to the buffer.
	c, err := Parse(data, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	copy(data[len(data)-7:], "HELLO")
	if s, _ := c.Field("msg").Str(); s != "hello" {
		t.Fatalf("copied value changed with the buffer: %q", s)
	}
}
