package linebatch

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keel-go/keel/transport"
)

var errNoNewline = errors.New("has a newline")

func checkNoNewline(p []byte) error {
	if bytes.IndexByte(p, '\n') >= 0 {
		return errNoNewline
	}
	return nil
}

func records(payloads ...string) []transport.Record {
	out := make([]transport.Record, len(payloads))
	for i, p := range payloads {
		out[i] = transport.Record{Payload: []byte(p)}
	}
	return out
}

func TestWriteLinesSkipsAndListsUnframable(t *testing.T) {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	n, be, err := WriteLines(w, records("a", "b\nc", "dd", "e\n"), checkNoNewline)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "a\ndd\n" {
		t.Fatalf("wrote %q", out.String())
	}
	if n != (Written{Lines: 2, Bytes: 5}) {
		t.Fatalf("counts %+v, want 2 lines of 5 bytes", n)
	}
	if be == nil || len(be.Failed) != 2 || be.Failed[0].Index != 1 || be.Failed[1].Index != 3 ||
		!errors.Is(be.Failed[0].Err, errNoNewline) {
		t.Fatalf("batch error %+v, want records 1 and 3 with the check's error", be)
	}
}

func TestWriteLinesAllFramable(t *testing.T) {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	n, be, err := WriteLines(w, records("x", "yz"), checkNoNewline)
	if err != nil || be != nil {
		t.Fatalf("err %v, batch error %v", err, be)
	}
	if out.Len() != 0 {
		t.Fatal("WriteLines flushed; the caller flushes")
	}
	_ = w.Flush()
	if out.String() != "x\nyz\n" || n.Lines != 2 || n.Bytes != 5 {
		t.Fatalf("wrote %q, counts %+v", out.String(), n)
	}
}

// failWriter accepts limit bytes, then fails.
type failWriter struct{ limit int }

var errDiskFull = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.limit {
		n := f.limit
		f.limit = 0
		return n, errDiskFull
	}
	f.limit -= len(p)
	return len(p), nil
}

func TestWriteLinesStopsAtAWriteError(t *testing.T) {
	w := bufio.NewWriterSize(&failWriter{limit: 16}, 16)
	n, _, err := WriteLines(w, records("0123456789", "0123456789", "0123456789", "0123456789"), checkNoNewline)
	if !errors.Is(err, errDiskFull) {
		t.Fatalf("err %v, want the write error", err)
	}
	// The 16-byte buffer first reaches the writer, and fails, while the
	// terminator of the third record is written: two lines were complete.
	if n != (Written{Lines: 2, Bytes: 22}) {
		t.Fatalf("counts %+v, want the 2 lines written before the failure", n)
	}
}

func TestSingleError(t *testing.T) {
	recErr := errors.New("record refused")
	one := &transport.BatchError{Failed: []transport.FailedRecord{{Index: 0, Err: recErr}}}
	two := &transport.BatchError{Failed: []transport.FailedRecord{{Index: 0, Err: recErr}, {Index: 1, Err: recErr}}}
	other := errors.New("broken")
	cases := []struct {
		name string
		in   error
		want error
	}{
		{"nil", nil, nil},
		{"one failure unwrapped", one, recErr},
		{"wrapped batch error", fmt.Errorf("send: %w", one), recErr},
		{"several failures kept", two, two},
		{"other error kept", other, other},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := SingleError(c.in); got != c.want {
				t.Fatalf("SingleError(%v) = %v, want %v", c.in, got, c.want)
			}
		})
	}
}

func TestPayloadCheck(t *testing.T) {
	check := PayloadCheck("file", "transport.file", 8)
	if err := check([]byte("ok")); err != nil {
		t.Fatalf("a short line: %v", err)
	}
	for _, p := range []string{"a\nb", "ab\r", "", "  ", "123456789"} {
		err := check([]byte(p))
		if !errors.Is(err, ErrUnframable) || !errors.Is(err, transport.ErrSend) {
			t.Fatalf("%q: %v, want ErrUnframable and transport.ErrSend", p, err)
		}
	}
	if err := check([]byte("123456789")); !strings.Contains(err.Error(), "transport.file") {
		t.Fatalf("the error does not name the section: %v", err)
	}
}

func TestSenderStateUsable(t *testing.T) {
	var st SenderState
	if err := st.Usable("pipe", "send"); err != nil {
		t.Fatalf("fresh: %v", err)
	}
	st.Broken = errors.New("broken pipe")
	if err := st.Usable("pipe", "send"); !errors.Is(err, transport.ErrSend) || !strings.Contains(err.Error(), "broken pipe") {
		t.Fatalf("broken: %v", err)
	}
	st.Closed = true
	if err := st.Usable("pipe", "send"); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("closed: %v", err)
	}
}
