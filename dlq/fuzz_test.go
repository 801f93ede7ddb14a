package dlq_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/transport"
)

// FuzzDecode feeds arbitrary lines to Decode: it must not panic, must
// fail with ErrMalformedEntry, and whatever it accepts must encode and
// decode back to the same entry.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"timestamp":1711432800123,"service":"loader","reason":"schema","attempts":0,"payload":"eyJpZCI6N30=","destination":"acme","source":{"topic":"events","partition":3,"offset":12345}}`,
		`{"timestamp":"2026-03-02T14:05:06Z","reason":"r","payload":""}`,
		`{"timestamp":-1,"reason":"\u2028\ud800","payload":"AA==","source":{"token":"inmem:1"}}`,
		`{"timestamp":1,"reason":"r","payload":"","source":{"partition":0}}`,
		`{"timestamp":1e3,"reason":"r","payload":""}`,
		`{"timestamp":1,"reason":"r","payload":"","attempts":2147483648}`,
		`{}`, `null`, `[]`, ``, `{"timestamp":`, "{\"timestamp\":1,\"reason\":\"\xff\",\"payload\":\"\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := dlq.Decode(b)
		if err != nil {
			if !errors.Is(err, dlq.ErrMalformedEntry) {
				t.Fatalf("error not ErrMalformedEntry: %v", err)
			}
			return
		}
		again, err := dlq.Decode(e.AppendJSON(nil))
		if err != nil {
			t.Fatalf("re-decode of %s: %v", e.AppendJSON(nil), err)
		}
		if !reflect.DeepEqual(normalise(again), normalise(e)) {
			t.Fatalf("round trip\n got %+v\nwant %+v", again, e)
		}
	})
}

// FuzzEncode builds entries from arbitrary strings and bytes: the JSON
// must decode back to the same entry, with invalid UTF-8 replaced.
func FuzzEncode(f *testing.F) {
	f.Add(int64(1711432800123), "svc", "reason", 0, []byte("payload"), "dest", "kafka:t:1:2", []byte("k"), "trace-id", []byte("v"))
	f.Add(int64(-5), "\x00\"\\", "\xff\xfe", 9, []byte{0, 0xff}, "\u2028", "", []byte(nil), "", []byte(nil))
	f.Fuzz(func(t *testing.T, ms int64, service, reason string, attempts int, payload []byte, dest, token string, key []byte, header string, value []byte) {
		if attempts < 0 || attempts > 1<<31-1 {
			attempts = 0
		}
		e := dlq.Entry{Time: time.UnixMilli(ms).UTC(), Service: service, Reason: reason, Attempts: attempts,
			Payload: payload, Destination: dest, Source: dlq.SourceFromToken(token), Key: key}
		if header != "" {
			e.Headers = []transport.Header{{Key: header, Value: value}}
		}
		got, err := dlq.Decode(e.AppendJSON(nil))
		if err != nil {
			t.Fatalf("decode of %s: %v", e.AppendJSON(nil), err)
		}
		want := e
		want.Service, want.Reason, want.Destination = fixUTF8(service), fixUTF8(reason), fixUTF8(dest)
		for i := range want.Headers {
			want.Headers[i].Key = fixUTF8(want.Headers[i].Key)
		}
		if want.Source != nil {
			s := *want.Source
			s.Token, s.Topic = fixUTF8(s.Token), fixUTF8(s.Topic)
			want.Source = &s
		}
		if !reflect.DeepEqual(normalise(got), normalise(want)) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, want)
		}
	})
}

// FuzzSourceFromToken: any text is kept as the token; a parsed Kafka
// position is consistent with it.
func FuzzSourceFromToken(f *testing.F) {
	for _, s := range []string{"kafka:orders:3:1042", "inmem:1", "kafka:a:b:c", "kafka:::", "kafka:t:2147483648:1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		src := dlq.SourceFromToken(s)
		if s == "" {
			if src != nil {
				t.Fatal("empty token gave a source")
			}
			return
		}
		if src.Token != s {
			t.Fatalf("token %q kept as %q", s, src.Token)
		}
		if src.Partition != nil {
			if !strings.HasPrefix(s, "kafka:"+src.Topic+":") || *src.Partition < 0 || src.Offset == nil || *src.Offset < 0 || src.Topic == "" {
				t.Fatalf("inconsistent parse of %q: %+v", s, src)
			}
		}
	})
}

// FuzzReader reads arbitrary NDJSON: no panic, every error is a
// *LineError or the end.
func FuzzReader(f *testing.F) {
	f.Add([]byte(`{"timestamp":1,"reason":"r","payload":""}` + "\n{bad\n\n" + `{"timestamp":2,"reason":"s","payload":"AA=="}`))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rd := dlq.NewReader(bytes.NewReader(b))
		rd.SetMaxLineBytes(256)
		for i := 0; i <= len(b)+1; i++ {
			_, err := rd.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			var le *dlq.LineError
			if err != nil && !errors.As(err, &le) {
				t.Fatalf("unexpected error %v", err)
			}
		}
		t.Fatal("reader did not reach the end")
	})
}

// normalise makes empty and nil payloads equal.
// normalise makes empty byte slices nil: the JSON form does not tell them
// apart (a nil key is left out, an empty one is kept).
func normalise(e dlq.Entry) dlq.Entry {
	if len(e.Payload) == 0 {
		e.Payload = nil
	}
	e.Headers = slices.Clone(e.Headers)
	for i := range e.Headers {
		if len(e.Headers[i].Value) == 0 {
			e.Headers[i].Value = nil
		}
	}
	return e
}

// fixUTF8 replaces each invalid byte with U+FFFD.
func fixUTF8(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
