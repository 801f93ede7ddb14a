package secrets

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseRef(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Ref
	}{
		{"vault:secret/data/kafka#password", Ref{"vault", "secret/data/kafka", "password"}},
		{"openbao:secret/data/kafka#password", Ref{"vault", "secret/data/kafka", "password"}},
		{"bao:/secret/kafka/", Ref{"vault", "secret/kafka", ""}},
		{"aws:prod/db#password", Ref{"aws", "prod/db", "password"}},
		{"aws:arn:aws:secretsmanager:eu-west-1:123:secret:db-AbC#pw", Ref{"aws", "arn:aws:secretsmanager:eu-west-1:123:secret:db-AbC", "pw"}},
		{"file:/var/run/secrets/token", Ref{"file", "/var/run/secrets/token", ""}},
		{"file:/a#b#c", Ref{"file", "/a#b", "c"}},
		{"env:DB_PASSWORD", Ref{"env", "DB_PASSWORD", ""}},
		{"env:CREDS#user name", Ref{"env", "CREDS", "user name"}},
		{"my-kms_2:some/path", Ref{"my-kms_2", "some/path", ""}},
	} {
		got, err := ParseRef(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
			continue
		}
		again, err := ParseRef(got.String())
		if err != nil || again != got {
			t.Errorf("round trip of %q: %+v, %v", c.in, again, err)
		}
	}
	for _, bad := range []string{
		"", "vault", ":x", "Vault:x", "1x:y", "vault:", "vault:#k", "vault:x#", "vault://", "env:1ABC", "env:A-B",
		"file:/a\x00b", "file:/a\nb", "file: /a", "file:/a ", "aws:x#k\x7f", strings.Repeat("a", 40) + ":x",
		"file:" + strings.Repeat("a", MaxRefLen), "file:\xff",
	} {
		if _, err := ParseRef(bad); !errors.Is(err, ErrInvalidRef) {
			t.Errorf("ParseRef(%q) accepted", bad)
		}
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{
		"vault:secret/data/kafka#password", "aws:prod/db#password", "file:/var/run/secrets/token", "env:DB_PASSWORD",
		"openbao:/x/", "file:/a#b#c", "env:", "x:#", "vault:secret/data/x#\x00", ":", "a:b:c#d", "file:\xff\xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidRef) {
				t.Fatalf("error %v does not wrap ErrInvalidRef", err)
			}
			return
		}
		if !validScheme(r.Provider) || r.Path == "" || !utf8.ValidString(r.Path) || strings.ContainsRune(r.Key, '#') {
			t.Fatalf("accepted %q as %+v", s, r)
		}
		again, err := ParseRef(r.String())
		if err != nil || again != r {
			t.Fatalf("round trip %q -> %+v -> %q -> %+v, %v", s, r, r.String(), again, err)
		}
	})
}
