package httpclient_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/keel-go/keel/httpclient"
	"github.com/keel-go/keel/secret"
)

// secretsIn lists which of the secrets appear in s.
func secretsIn(s string, secrets ...string) []string {
	var found []string
	for _, x := range secrets {
		if strings.Contains(s, x) {
			found = append(found, x)
		}
	}
	return found
}

func TestNoSecretInErrorsOrLogs(t *testing.T) {
	const (
		hdr   = "hdr-s3cr3t"
		reqH  = "req-s3cr3t"
		pw    = "pw-s3cr3t"
		user  = "alice-s3cr3t"
		query = "q-s3cr3t"
		sig   = "sig-s3cr3t"
	)
	all := []string{hdr, reqH, pw, user, query, sig}
	srv := newServer(t, reply{Status: http.StatusServiceUnavailable})
	var logs bytes.Buffer
	cfg := httpclient.Config{
		MaxAttempts: 3,
		Headers:     map[string]secret.String{"Authorization": secret.New("Bearer " + hdr)},
	}
	c, _, _ := newClient(t, cfg, httpclient.WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))

	host := strings.TrimPrefix(srv.URL, "http://")
	target := fmt.Sprintf("http://%s:%s@%s/v1/items?access_token=%s&page=2&sig=%s#frag", user, pw, host, query, sig)
	err := c.DoJSON(context.Background(), http.MethodGet, target, nil, nil, httpclient.WithSecretHeader("X-Api-Key", secret.New(reqH)))
	var ex *httpclient.ExhaustedError
	if !errors.As(err, &ex) {
		t.Fatalf("err = %v, want ExhaustedError", err)
	}

	// The secrets did reach the wire.
	r := srv.requests()[0]
	if r.Header.Get("Authorization") != "Bearer "+hdr || r.Header.Get("X-Api-Key") != reqH || !strings.Contains(r.Query, query) {
		t.Fatalf("secrets not sent: %v %q", r.Header, r.Query)
	}
	// ... and nowhere else.
	for what, s := range map[string]string{
		"Error()":        err.Error(),
		"%+v":            fmt.Sprintf("%+v", err),
		"%#v":            fmt.Sprintf("%#v", err),
		"logs":           logs.String(),
		"Config %+v":     fmt.Sprintf("%+v", c.Config()),
		"Config %#v":     fmt.Sprintf("%#v", cfg),
		"ExhaustedError": fmt.Sprintf("%+v", *ex),
	} {
		if leaked := secretsIn(s, all...); len(leaked) > 0 {
			t.Errorf("%s leaks %v: %s", what, leaked, s)
		}
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Fatalf("no retry warning was logged: %q", logs.String())
	}
	wantURL := srv.URL + "/v1/items?access_token=[REDACTED]&page=2&sig=[REDACTED]"
	if ex.URL != wantURL || !strings.Contains(logs.String(), wantURL) {
		t.Fatalf("URL %q (logs %q), want %q", ex.URL, logs.String(), wantURL)
	}
}

func TestNoSecretInTransportErrors(t *testing.T) {
	c, _, _ := newClient(t, httpclient.Config{MaxAttempts: 2})
	target := "http://bob:pw-s3cr3t@" + refusedAddr(t) + "/x?token=tok-s3cr3t"
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, target, nil)
	_, err := c.Do(req)
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err)} {
		if leaked := secretsIn(s, "pw-s3cr3t", "tok-s3cr3t", "bob"); len(leaked) > 0 {
			t.Fatalf("transport error leaks %v: %s", leaked, s)
		}
	}
}

func TestRedactURL(t *testing.T) {
	cases := map[string]string{
		"https://u:pw@api.example.com/v1?token=abc&page=2#top": "https://api.example.com/v1?token=[REDACTED]&page=2",
		"https://tok@github.com/o/r.git":                       "https://github.com/o/r.git",
		"https://s3/b/k?X-Amz-Credential=c&X-Amz-Signature=s":  "https://s3/b/k?X-Amz-Credential=[REDACTED]&X-Amz-Signature=[REDACTED]",
		"https://maps/api?key=AIza&q=x":                        "https://maps/api?key=[REDACTED]&q=x",
		"https://h/cb?code=c0de&state=s":                       "https://h/cb?code=[REDACTED]&state=s",
		"https://h/p?api%5Fkey=v&flag&empty=":                  "https://h/p?api%5Fkey=[REDACTED]&flag&empty=",
		"http://h:8080/path/to?x=1":                            "http://h:8080/path/to?x=1",
	}
	for in, want := range cases {
		u, err := parseURL(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := httpclient.RedactURL(u); got != want {
			t.Errorf("RedactURL(%s) = %s, want %s", in, got, want)
		}
	}
	if httpclient.RedactURL(nil) != "" {
		t.Error("nil URL")
	}
}
