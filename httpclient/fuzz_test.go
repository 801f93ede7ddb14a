package httpclient_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/httpclient"
)

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{
		"", "0", "120", " 7 ", "-1", "1.5", "99999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT",
		"Wednesday, 21-Oct-15 07:28:00 GMT", "Wed Oct 21 07:28:00 2015", "Wed, 21 Oct 2099 07:28:00 GMT", "soon", "\x00",
	} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := httpclient.ParseRetryAfter(v, now)
		if d < 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v, negative", v, d)
		}
		if !ok && d != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v without ok", v, d)
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil && strings.TrimSpace(v)[0] != '+' {
			if !ok || d != time.Duration(n)*time.Second {
				t.Fatalf("ParseRetryAfter(%q) = %v, %v; want %d s", v, d, ok, n)
			}
		}
	})
}

func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{
		"https://u:password1@h/p?token=abcdefgh&x=1#frag", "http://h", "//user:passw0rd!@h", "mailto:a@b",
		"https://h/?token=", "https://h/?%zz=1&token=12345678", "http://[::1]:80/a?a=b;c=d", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		out := httpclient.RedactURL(u)
		bare := *u
		bare.User = nil
		bareStr := bare.String()
		if pw, set := u.User.Password(); set && len(pw) >= 8 && !strings.Contains(bareStr, pw) && strings.Contains(out, pw) {
			t.Fatalf("RedactURL(%q) = %q shows the password", raw, out)
		}
		if name := u.User.Username(); len(name) >= 8 && !strings.Contains(bareStr, name) && strings.Contains(out, name) {
			t.Fatalf("RedactURL(%q) = %q shows the user name", raw, out)
		}
		for _, tok := range u.Query()["token"] {
			rest := strings.ReplaceAll(bareStr, "token="+url.QueryEscape(tok), "")
			if len(tok) >= 8 && !strings.Contains(rest, tok) && strings.Contains(out, tok) {
				t.Fatalf("RedactURL(%q) = %q shows the token", raw, out)
			}
		}
	})
}
