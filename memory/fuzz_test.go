package memory

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// goMemLimitSyntax is what the Go runtime accepts in GOMEMLIMIT.
var goMemLimitSyntax = regexp.MustCompile(`^(off|[+-]?[0-9]+(([KMGT]i)?B)?)$`)

func FuzzParseGoMemLimit(f *testing.F) {
	for _, s := range []string{"off", "0", "700MiB", "1GiB", "5B", "1KiB", "8388607TiB", "8388608TiB", "+1", "-0", "", "1GB", "iB", "KiB", "5iB", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseGoMemLimit(s)
		if err != nil {
			if v != 0 {
				t.Fatalf("parseGoMemLimit(%q) = %d with error %v", s, v, err)
			}
			return
		}
		if v < 0 {
			t.Fatalf("parseGoMemLimit(%q) = %d < 0", s, v)
		}
		if !goMemLimitSyntax.MatchString(s) {
			t.Fatalf("parseGoMemLimit accepted %q, which the runtime rejects", s)
		}
		// The value round-trips through its plain byte count.
		if s != "off" {
			back, err := parseGoMemLimit(strconv.FormatInt(v, 10))
			if err != nil || back != v {
				t.Fatalf("%q = %d, but %d parses as %d, %v", s, v, v, back, err)
			}
		}
	})
}

func FuzzParseMemTotal(f *testing.F) {
	f.Add("MemTotal:       24684096 kB\nMemFree: 1 kB\n")
	f.Add("MemFree: 1 kB\nMemTotal: 1 kB")
	f.Add("MemTotal: 9007199254740991 kB\n")
	f.Add("MemTotal: kB\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseMemTotal(s)
		if err != nil {
			return
		}
		if v <= 0 || v%1024 != 0 {
			t.Fatalf("parseMemTotal(%q) = %d: want a positive multiple of 1024", s, v)
		}
		if !strings.Contains(s, "MemTotal:") {
			t.Fatalf("parseMemTotal(%q) = %d without a MemTotal line", s, v)
		}
	})
}
