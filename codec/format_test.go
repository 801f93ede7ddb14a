package codec

import (
	"errors"
	"strings"
	"testing"
)

func TestParseFormat(t *testing.T) {
	cases := []struct {
		in   string
		want Format
	}{
		{"", Auto},
		{"auto", Auto},
		{"AUTO", Auto},
		{"json", JSON},
		{" Json ", JSON},
		{"msgpack", MsgPack},
		{"MsgPack", MsgPack},
		{"messagepack", MsgPack},
	}
	for _, c := range cases {
		got, err := ParseFormat(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseFormat(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"xml", "jsonl", "msg pack", "1"} {
		_, err := ParseFormat(bad)
		if !errors.Is(err, ErrUnknownFormat) {
			t.Fatalf("ParseFormat(%q) error %v does not match ErrUnknownFormat", bad, err)
		}
		if !strings.Contains(err.Error(), `"`+bad+`"`) || !strings.Contains(err.Error(), "auto, json or msgpack") {
			t.Errorf("ParseFormat(%q) error %q does not name the value and the choices", bad, err)
		}
	}
}

func TestFormatText(t *testing.T) {
	for _, f := range []Format{Auto, JSON, MsgPack} {
		b, err := f.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Format = 7
		if err := back.UnmarshalText(b); err != nil || back != f {
			t.Errorf("round trip of %v gave %v, %v", f, back, err)
		}
	}
	if got := Format(9).String(); got != "Format(9)" {
		t.Errorf("Format(9).String() = %q", got)
	}
	if Format(3).Valid() {
		t.Error("Format(3) reported valid")
	}
	if _, err := Format(3).MarshalText(); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("MarshalText of Format(3): %v", err)
	}
	f := MsgPack
	if err := f.UnmarshalText([]byte("yaml")); !errors.Is(err, ErrUnknownFormat) || f != MsgPack {
		t.Errorf("UnmarshalText(yaml) = %v, left %v", err, f)
	}
}

func TestDetect(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want Format
	}{
		{"nil", nil, Auto},
		{"empty", []byte{}, Auto},
		{"whitespace only", []byte(" \t\r\n"), Auto},
		{"object", []byte(`{"a":1}`), JSON},
		{"array", []byte(`[1]`), JSON},
		{"object after whitespace", []byte("  \r\n\t{\"a\":1}"), JSON},
		{"array after whitespace", []byte("\n[]"), JSON},
		{"json string", []byte(`"abc"`), Auto},
		{"json number", []byte(`42`), Auto},
		{"json literal", []byte(`true`), Auto},
		{"text", []byte(`hello`), Auto},
		{"form feed is not JSON whitespace", []byte("\f{}"), Auto},
		{"NUL then object", []byte("\x00{}"), Auto},
		{"fixmap empty", []byte{0x80}, MsgPack},
		{"fixmap", []byte{0x81, 0xa1, 'a', 0x01}, MsgPack},
		{"fixmap 15", []byte{0x8f}, MsgPack},
		{"fixarray empty", []byte{0x90}, MsgPack},
		{"fixarray 15", []byte{0x9f}, MsgPack},
		{"array16", []byte{0xdc, 0, 0}, MsgPack},
		{"array32", []byte{0xdd, 0, 0, 0, 0}, MsgPack},
		{"map16", []byte{0xde, 0, 0}, MsgPack},
		{"map32", []byte{0xdf, 0, 0, 0, 0}, MsgPack},
		{"fixstr", []byte{0xa3, 'a', 'b', 'c'}, Auto},
		{"nil code", []byte{0xc0}, Auto},
		{"str8", []byte{0xd9, 1, 'a'}, Auto},
		{"fixext", []byte{0xd4, 1, 1}, Auto},
		{"negative fixint", []byte{0xff}, Auto},
		{"whitespace then msgpack map", []byte{' ', 0x81}, Auto},
		{"positive fixint 0x7b is '{'", []byte{0x7b}, JSON},
	}
	for _, c := range cases {
		if got := Detect(c.in); got != c.want {
			t.Errorf("%s: Detect(%q) = %v, want %v", c.name, c.in, got, c.want)
		}
	}
	// Every byte value as the first byte: only the documented ranges are
	// MsgPack, only '{' and '[' are JSON.
	for b := 0; b < 256; b++ {
		got := Detect([]byte{byte(b)})
		var want Format
		switch {
		case b >= 0x80 && b <= 0x9f, b >= 0xdc && b <= 0xdf:
			want = MsgPack
		case b == '{', b == '[':
			want = JSON
		}
		if got != want {
			t.Errorf("Detect([0x%02x]) = %v, want %v", b, got, want)
		}
	}
}
