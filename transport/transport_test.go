package transport_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/internal/linesplit"
)

type tok int

func (t tok) String() string { return fmt.Sprintf("t:%d", int(t)) }

func TestMapRecordsKeepsTokensAndDeadLetters(t *testing.T) {
	b := transport.NewBatch(
		[]transport.Record{{Payload: []byte("a")}, {Payload: []byte("b")}},
		[]transport.Token{tok(1), tok(2)},
	).WithDeadLetters(transport.DeadLetter{Reason: "bad"})
	out := b.MapRecords(func(r transport.Record) []transport.Record {
		return []transport.Record{r, r}
	})
	if out.Len() != 4 || len(out.Tokens) != 2 || len(out.DeadLetters) != 1 {
		t.Fatalf("fan-out: %d records, %d tokens, %d dead letters", out.Len(), len(out.Tokens), len(out.DeadLetters))
	}
	none := b.MapRecords(func(transport.Record) []transport.Record { return nil })
	if none.Len() != 0 || len(none.Tokens) != 2 || none.IsEmpty() {
		t.Fatal("filtering every record must keep the tokens")
	}
	if transport.FromRecords(transport.Record{}).Tokens != nil {
		t.Fatal("FromRecords must carry no tokens")
	}
	if b.PayloadBytes() != 2 {
		t.Fatalf("PayloadBytes = %d", b.PayloadBytes())
	}
	var empty transport.Batch
	if !empty.IsEmpty() {
		t.Fatal("zero batch must be empty")
	}
}

func TestLimitsFullHasFloorOfOne(t *testing.T) {
	l := transport.Limits{MaxRecords: 3, MaxBytes: 10}
	cases := []struct {
		n    int
		b    int64
		full bool
	}{
		{0, 0, false}, {0, 1 << 30, false}, {1, 100, true}, {1, 9, false}, {2, 10, true}, {3, 0, true},
	}
	for _, c := range cases {
		if got := l.Full(c.n, c.b); got != c.full {
			t.Errorf("Full(%d, %d) = %v, want %v", c.n, c.b, got, c.full)
		}
	}
	if (transport.Limits{}).Normalize().MaxRecords != transport.DefaultMaxRecords {
		t.Fatal("zero limits must take the default record cap")
	}
	if (transport.Limits{}).Full(999, 1<<40) {
		t.Fatal("no byte cap means only the record cap applies")
	}
}

func TestErrorTaxonomy(t *testing.T) {
	cause := errors.New("dial tcp: refused")
	err := fmt.Errorf("wrapped: %w", transport.NewError(transport.ErrConnection, "kafka", "dial", cause))
	if !errors.Is(err, transport.ErrConnection) || !errors.Is(err, cause) {
		t.Fatal("errors.Is must match the kind and the cause")
	}
	if errors.Is(err, transport.ErrClosed) {
		t.Fatal("wrong kind matched")
	}
	if !strings.Contains(err.Error(), "kafka: dial") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("message: %v", err)
	}
	if !transport.IsRetryable(transport.NewError(transport.ErrTimeout, "", "", nil)) || transport.IsRetryable(err) {
		t.Fatal("IsRetryable wrong")
	}
}

func TestClassify(t *testing.T) {
	bp := transport.NewError(transport.ErrBackpressure, "inmem", "send", nil)
	dl := fmt.Errorf("x: %w", transport.ErrDeadLettered)
	fatal := errors.New("boom")
	cases := []struct {
		err  error
		want transport.Outcome
	}{
		{nil, transport.OK},
		{bp, transport.Backpressure},
		{dl, transport.DeadLettered},
		{fatal, transport.Fatal},
		{&transport.BatchError{Failed: []transport.FailedRecord{{Index: 1, Err: dl}, {Index: 2, Err: bp}}}, transport.Backpressure},
		{&transport.BatchError{Failed: []transport.FailedRecord{{Index: 0, Err: bp}, {Index: 3, Err: fatal}}}, transport.Fatal},
		{&transport.BatchError{Failed: []transport.FailedRecord{{Index: 0, Err: dl}}}, transport.DeadLettered},
	}
	for i, c := range cases {
		if got := transport.Classify(c.err); got != c.want {
			t.Errorf("case %d: Classify = %v, want %v", i, got, c.want)
		}
	}
	be := &transport.BatchError{Failed: []transport.FailedRecord{{Index: 4, Err: bp}, {Index: 7, Err: bp}}}
	if !errors.Is(be, transport.ErrBackpressure) || fmt.Sprint(be.Indices()) != "[4 7]" || !strings.Contains(be.Error(), "index 4") {
		t.Fatalf("BatchError: %v %v", be, be.Indices())
	}
}

func TestSplitNDJSON(t *testing.T) {
	blob := []byte("{\"a\":1}\r\n\n  \n{\"b\":2}\n\t{\"c\":3} \r\n\f\v\r\n{\"d\":4}\r\r\n{\"e\":5}")
	lines := transport.SplitNDJSON(blob)
	// One trailing CR is stripped and blank lines are skipped; nothing
	// else is trimmed.
	want := []string{`{"a":1}`, `{"b":2}`, "\t{\"c\":3} ", "{\"d\":4}\r", `{"e":5}`}
	if len(lines) != len(want) {
		t.Fatalf("lines = %q, want %q", lines, want)
	}
	for i := range want {
		if string(lines[i]) != want[i] {
			t.Errorf("line %d = %q, want %q", i, lines[i], want[i])
		}
	}
	if &lines[0][0] != &blob[0] {
		t.Fatal("lines must alias the blob, not copy it")
	}
	if len(transport.SplitNDJSON(nil)) != 0 || len(transport.SplitNDJSON([]byte("\n\r\n \t\r\n"))) != 0 {
		t.Fatal("blank input must give no lines")
	}
	b := transport.BatchFromNDJSON(blob)
	if b.Len() != 5 || len(b.Tokens) != 0 {
		t.Fatal("BatchFromNDJSON")
	}
	if got := framerLines(blob); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("the file and pipe framer gives %q, SplitNDJSON %q", got, want)
	}
}

// framerLines frames blob as the file and pipe transports do, as a stream
// that ends after blob.
func framerLines(blob []byte) []string {
	fr := linesplit.New(len(blob) + 1)
	var out []string
	for rest := blob; len(rest) > 0; {
		n := copy(fr.Space(), rest)
		fr.Wrote(n)
		rest = rest[n:]
		for f := fr.Next(); f.Kind != linesplit.None; f = fr.Next() {
			if f.Kind == linesplit.Line {
				out = append(out, string(f.Line))
			}
		}
	}
	if f := fr.Finish(); f.Kind == linesplit.Line {
		out = append(out, string(f.Line))
	}
	return out
}

func TestSplitJSONArray(t *testing.T) {
	ok := []struct {
		in   string
		want []string
	}{
		{`[]`, nil},
		{` [ ] `, nil},
		{`[1,2,3]`, []string{"1", "2", "3"}},
		{`[{"a":[1,2]}, "x,]}", [ {"b":"\"]"} ]]`, []string{`{"a":[1,2]}`, `"x,]}"`, `[ {"b":"\"]"} ]`}},
		{`[1,nul]`, []string{"1", "nul"}},
		{"[\n1\n]\n", []string{"1"}},
	}
	for _, c := range ok {
		got, err := transport.SplitJSONArray([]byte(c.in))
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", toBytes(c.want)) {
			t.Errorf("%s: got %q want %q", c.in, got, c.want)
		}
	}
	bad := []struct {
		in   string
		kind error
	}{
		{``, transport.ErrUnexpectedEnd},
		{`{"a":1}`, transport.ErrNotAnArray},
		{`[1,2`, transport.ErrUnexpectedEnd},
		{`[,1]`, transport.ErrEmptyElement},
		{`[1,]`, transport.ErrEmptyElement},
		{`[1,,2]`, transport.ErrEmptyElement},
		{`[1}`, transport.ErrUnbalanced},
		{`[{]}`, transport.ErrUnbalanced},
		{`[1] x`, transport.ErrTrailingGarbage},
		{`["abc]`, transport.ErrUnexpectedEnd},
	}
	for _, c := range bad {
		_, err := transport.SplitJSONArray([]byte(c.in))
		var fe *transport.FramingError
		if !errors.Is(err, c.kind) || !errors.As(err, &fe) {
			t.Errorf("%q: err = %v, want %v", c.in, err, c.kind)
		}
	}
}

func toBytes(s []string) [][]byte {
	if s == nil {
		return nil
	}
	out := make([][]byte, len(s))
	for i := range s {
		out[i] = []byte(s[i])
	}
	return out
}

func FuzzSplitJSONArray(f *testing.F) {
	for _, s := range []string{`[]`, `[1,2]`, `[{"a":"]"}]`, `[`, `[1,]`, `x`, "[\"\\\"\"]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, blob []byte) {
		els, err := transport.SplitJSONArray(blob)
		if err != nil {
			return
		}
		for _, e := range els {
			if len(e) == 0 {
				t.Fatal("empty element returned without error")
			}
		}
	})
}

// FuzzSplitNDJSON checks that SplitNDJSON frames any input exactly as the
// file and pipe transports do.
func FuzzSplitNDJSON(f *testing.F) {
	f.Add([]byte("a\nb\r\n\nc"))
	f.Add([]byte(" a \r\r\n\t\n\f\v\r"))
	f.Fuzz(func(t *testing.T, blob []byte) {
		lines := transport.SplitNDJSON(blob)
		for _, l := range lines {
			if len(l) == 0 || strings.ContainsAny(string(l), "\n") || strings.Trim(string(l), " \t\r\f\v") == "" {
				t.Fatalf("bad line %q", l)
			}
		}
		got := make([]string, len(lines))
		for i, l := range lines {
			got[i] = string(l)
		}
		if want := framerLines(blob); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Fatalf("SplitNDJSON(%q) = %q, the transports' framer gives %q", blob, got, want)
		}
	})
}
