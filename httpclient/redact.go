package httpclient

import (
	"net/url"
	"strings"

	"github.com/keel-go/keel/logging"
)

// queryMasker decides which query parameters hold secrets. Beyond the
// default sensitive names (token, password, api_key, credential, ...) a URL
// carries keys (?key=...), signatures of presigned URLs (sig, signature,
// X-Amz-Signature) and OAuth codes.
var queryMasker = logging.NewMasker("key", "sig", "signature", "code")

// RedactURL renders u for logs, errors and spans: without user info
// (name and password) and fragment, with the value of every sensitive query
// parameter replaced by [REDACTED], and the rest passed through
// logging.MaskString. A nil URL renders as "".
//
//	https://u:pw@api.example.com/v1?token=abc&page=2#top
//	-> https://api.example.com/v1?token=[REDACTED]&page=2
//
// A secret inside the path (/bot<token>/send) cannot be told apart from
// the path and is not masked; pass such secrets in a header instead.
func RedactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	c.Fragment, c.RawFragment = "", ""
	c.RawQuery = redactQuery(u.RawQuery)
	return logging.MaskString(c.String())
}

// redactRawURL is RedactURL for a string that may not parse.
func redactRawURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparsable URL]"
	}
	return RedactURL(u)
}

// redactQuery replaces the values of sensitive parameters, keeping the
// order, the other values and the raw encoding.
func redactQuery(q string) string {
	if q == "" {
		return q
	}
	var b strings.Builder
	changed := false
	first := true
	for part := range strings.SplitSeq(q, "&") {
		if !first {
			b.WriteByte('&')
		}
		first = false
		k, v, hasValue := strings.Cut(part, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if hasValue && v != "" && queryMasker.Sensitive(name) {
			b.WriteString(k)
			b.WriteString("=[REDACTED]")
			changed = true
			continue
		}
		b.WriteString(part)
	}
	if !changed {
		return q
	}
	return b.String()
}
