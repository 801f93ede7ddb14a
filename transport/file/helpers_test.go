package file

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
)

// testConfig returns a config for a file in a fresh directory, with a
// private registry and a silent logger.
func testConfig(t testing.TB) Config {
	t.Helper()
	return Config{
		Path:         filepath.Join(t.TempDir(), "events.ndjson"),
		PollInterval: time.Millisecond,
		Metrics:      metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true}),
		Logger:       slog.New(slog.DiscardHandler),
	}
}

func appendFile(t testing.TB, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func newReceiver(t testing.TB, cfg Config) *Receiver {
	t.Helper()
	r, err := NewReceiver(cfg)
	if err != nil {
		t.Fatalf("NewReceiver: %v", err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

func recv(t testing.TB, r *Receiver, l transport.Limits) transport.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := r.Recv(ctx, l)
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	return b
}

// recvNothing proves that Recv delivers nothing within a few poll
// intervals: whenever the deadline fires, a non-empty result is wrong.
func recvNothing(t testing.TB, r *Receiver) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	b, err := r.Recv(ctx, transport.Limits{})
	if err != context.DeadlineExceeded {
		t.Fatalf("Recv = %d records, %d tokens, err %v; want nothing and DeadlineExceeded", len(b.Records), len(b.Tokens), err)
	}
	if !b.IsEmpty() {
		t.Fatalf("Recv returned data with the error: %+v", b)
	}
}

func payloads(b transport.Batch) []string {
	out := make([]string, len(b.Records))
	for i, r := range b.Records {
		out[i] = string(r.Payload)
	}
	return out
}

func offsets(t testing.TB, toks []transport.Token) []int64 {
	t.Helper()
	out := make([]int64, len(toks))
	for i, tok := range toks {
		ft, ok := tok.(Token)
		if !ok {
			t.Fatalf("token %d is %T, want file.Token", i, tok)
		}
		out[i] = ft.Offset
	}
	return out
}

func equal[T comparable](t testing.TB, what string, got, want []T) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: got %v, want %v", what, got, want)
		}
	}
}

func positionOf(t testing.TB, cfg Config) int64 {
	t.Helper()
	p := cfg.PositionPath
	if p == "" {
		p = cfg.Path + PositionSuffix
	}
	off, err := readPosition(p, cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	return off
}
