package jsonstr

import (
	"encoding/json"
	"testing"
)

func marshalNoHTML(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	// encoding/json escapes <, > and & for HTML; undo that to compare.
	var back string
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return back
}

func TestAppendQuotedRoundTrips(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "ctl\x00\x01\n\r\t\x1f", "bad\xffutf8", "sep\u2028\u2029", "ünïcødé 漢字"} {
		out := AppendQuoted(nil, s)
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q: output %s is not JSON: %v", s, out, err)
		}
		if want := marshalNoHTML(t, s); got != want {
			t.Errorf("%q: decoded %q, want %q", s, got, want)
		}
	}
}

func FuzzAppendQuoted(f *testing.F) {
	f.Add("a\"b\\c\x00\xff\u2028")
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendQuoted(nil, s)
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("output %s is not JSON: %v", out, err)
		}
		if want := marshalNoHTML(t, s); got != want {
			t.Fatalf("decoded %q, want %q", got, want)
		}
	})
}
