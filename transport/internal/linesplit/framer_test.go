package linesplit

import (
	"bytes"
	"strings"
	"testing"
)

// modelFrame is the expected outcome for one line, computed without the
// framer: split the whole input on '\n' at once.
type modelFrame struct {
	kind Kind
	line string
	end  int64
	size int64
}

func modelFrames(data []byte, maxLine int, final bool) []modelFrame {
	var out []modelFrame
	classify := func(line []byte, end int) {
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		switch {
		case len(line) > maxLine:
			out = append(out, modelFrame{kind: Oversize, line: string(line[:min(DeadLetterPrefixBytes, maxLine)]), end: int64(end), size: int64(len(line))})
		case strings.TrimLeft(string(line), " \t\r\f\v") == "":
			out = append(out, modelFrame{kind: Blank, end: int64(end)})
		default:
			out = append(out, modelFrame{kind: Line, line: string(line), end: int64(end)})
		}
	}
	off := 0
	for {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			break
		}
		classify(data[off:off+i], off+i+1)
		off += i + 1
	}
	if final && off < len(data) {
		classify(data[off:], len(data))
	}
	return out
}

// feed runs data through a framer in chunks whose sizes cycle through
// chunks (0 means 1), checking the memory bound after every read.
func feed(t testing.TB, data []byte, maxLine int, chunks []byte, final bool) []modelFrame {
	f := New(maxLine)
	var out []modelFrame
	collect := func(fr Frame) {
		out = append(out, modelFrame{kind: fr.Kind, line: string(fr.Line), end: fr.End, size: fr.Size})
	}
	drain := func() {
		for {
			fr := f.Next()
			if fr.Kind == None {
				return
			}
			collect(fr)
		}
	}
	ci := 0
	for len(data) > 0 {
		size := len(data)
		if len(chunks) > 0 {
			size = max(1, int(chunks[ci%len(chunks)]))
			ci++
		}
		sp := f.Space()
		if len(sp) == 0 {
			t.Fatalf("space returned no room (buffer %d, max line %d)", f.BufferSize(), maxLine)
		}
		n := copy(sp, data[:min(size, len(data))])
		f.Wrote(n)
		data = data[n:]
		if f.BufferSize() > maxLine+2 {
			t.Fatalf("framer buffer grew to %d bytes for a %d-byte line limit", f.BufferSize(), maxLine)
		}
		drain()
	}
	if final {
		if fr := f.Finish(); fr.Kind != None {
			collect(fr)
		}
		if fr := f.Finish(); fr.Kind != None {
			t.Fatalf("finish twice returned %+v", fr)
		}
	}
	return out
}

func sameFrames(t testing.TB, got, want []modelFrame) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d\ngot  %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("frame %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestFramerCases(t *testing.T) {
	long := strings.Repeat("x", 40)
	cases := []struct {
		name  string
		in    string
		max   int
		final bool
	}{
		{"simple", "a\nbb\nccc\n", 8, false},
		{"partial last line held", "a\nbb", 8, false},
		{"partial last line at end of stream", "a\nbb", 8, true},
		{"crlf", "a\r\nb\r\n", 8, false},
		{"blank and whitespace lines", "\n\n \t\na\n\r\n\nb\n", 8, false},
		{"exactly max", "12345678\n", 8, false},
		{"exactly max with crlf", "12345678\r\n", 8, false},
		{"one over max", "123456789\nok\n", 8, false},
		{"far over max", long + "\nok\n" + long + "\r\n", 8, false},
		{"oversize at end of stream", "ok\n" + long, 8, true},
		{"oversize crlf split", long + "\r\nz\n", 8, false},
		{"lone cr is content", "a\rb\n", 8, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := modelFrames([]byte(c.in), c.max, c.final)
			for _, chunks := range [][]byte{nil, {1}, {2}, {3, 1, 7}, {5}} {
				sameFrames(t, feed(t, []byte(c.in), c.max, chunks, c.final), want)
			}
		})
	}
}

func TestFramerOversizeIsNotHeld(t *testing.T) {
	const maxLine = 1 << 10
	huge := bytes.Repeat([]byte("y"), 8<<20)
	in := append(append([]byte("a\n"), huge...), "\nb\n"...)
	got := feed(t, in, maxLine, []byte{255, 3, 200}, false)
	want := []modelFrame{
		{kind: Line, line: "a", end: 2},
		{kind: Oversize, line: string(huge[:maxLine]), end: int64(2 + len(huge) + 1), size: int64(len(huge))},
		{kind: Line, line: "b", end: int64(len(in))},
	}
	sameFrames(t, got, want)
}

func FuzzFramer(f *testing.F) {
	f.Add([]byte("a\nbb\r\n\n  \nccc"), []byte{1, 2, 3}, uint8(4), false)
	f.Add([]byte("{\"k\":1}\n{\"k\":2}\n"), []byte{}, uint8(16), true)
	f.Add([]byte(strings.Repeat("z", 100)+"\r\nq\n"), []byte{7}, uint8(8), true)
	f.Add([]byte("\r\r\n\r\n\n"), []byte{1}, uint8(1), false)
	f.Fuzz(func(t *testing.T, data, chunks []byte, maxLine uint8, final bool) {
		m := int(maxLine%64) + 1
		want := modelFrames(data, m, final)
		sameFrames(t, feed(t, data, m, chunks, final), want)
		sameFrames(t, feed(t, data, m, nil, final), want)
	})
}
