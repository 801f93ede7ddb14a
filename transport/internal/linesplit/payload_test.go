package linesplit

import (
	"bytes"
	"strings"
	"testing"
)

func TestUnframable(t *testing.T) {
	cases := []struct {
		name string
		p    string
		want string // a substring of the reason; "" means framable
	}{
		{"json object", `{"k":1}`, ""},
		{"exactly the limit", "12345678", ""},
		{"inner carriage return", "a\rb", ""},
		{"leading whitespace", " x", ""},
		{"empty", "", "empty or whitespace only"},
		{"whitespace only", " \t\f\v\r", "empty or whitespace only"},
		{"over the limit", "123456789", "9 bytes is over transport.test.max_line_bytes 8"},
		{"newline", "a\nb", "contains a newline"},
		{"trailing newline", "ab\n", "contains a newline"},
		{"trailing carriage return", "ab\r", "ends with a carriage return"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Unframable([]byte(c.p), 8, "transport.test")
			if c.want == "" && got != "" {
				t.Fatalf("Unframable(%q) = %q, want framable", c.p, got)
			}
			if c.want != "" && !strings.Contains(got, c.want) {
				t.Fatalf("Unframable(%q) = %q, want a reason containing %q", c.p, got, c.want)
			}
		})
	}
}

// readsBack reports whether p followed by '\n' frames as exactly one Line
// equal to p.
func readsBack(p []byte, maxLine int) bool {
	f := New(maxLine)
	data := append(bytes.Clone(p), '\n')
	var frames []Frame
	for len(data) > 0 {
		n := copy(f.Space(), data)
		f.Wrote(n)
		data = data[n:]
		for fr := f.Next(); fr.Kind != None; fr = f.Next() {
			fr.Line = bytes.Clone(fr.Line)
			frames = append(frames, fr)
		}
	}
	if fr := f.Finish(); fr.Kind != None {
		frames = append(frames, fr)
	}
	return len(frames) == 1 && frames[0].Kind == Line && bytes.Equal(frames[0].Line, p)
}

// FuzzUnframable proves the sender-side check exact: a payload is accepted
// if and only if the Framer reads it back as the same single line.
func FuzzUnframable(f *testing.F) {
	for _, s := range []string{`{"k":1}`, "", " ", "a\nb", "a\r", "a\rb", "123456789", "\r\n", "x\r\r"} {
		f.Add([]byte(s), uint8(8))
	}
	f.Fuzz(func(t *testing.T, p []byte, maxLine uint8) {
		m := int(maxLine%64) + 1
		why := Unframable(p, m, "transport.test")
		if ok := readsBack(p, m); ok != (why == "") {
			t.Fatalf("Unframable(%q, %d) = %q but reads back as one line: %v", p, m, why, ok)
		}
	})
}
