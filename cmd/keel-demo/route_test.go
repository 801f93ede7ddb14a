package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/file"
)

func routed(route, payload string) transport.Record {
	return transport.Record{Payload: []byte(payload), Key: []byte(route),
		Headers: []transport.Header{{Key: routeHeader, Value: []byte(route)}}}
}

func newTestRoutedSender(t *testing.T) (*routedSender, string) {
	t.Helper()
	pattern := filepath.Join(t.TempDir(), "out", routePlaceholder+".ndjson")
	if err := os.MkdirAll(filepath.Dir(pattern), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := newRoutedSender(file.Config{
		Path: pattern, Sync: file.SyncNone,
		Metrics: metrics.New(metrics.Config{Namespace: "routetest", NoRuntimeCollectors: true}),
		Logger:  slog.New(slog.DiscardHandler),
	}, "output.file")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, pattern
}

func readRoute(t *testing.T, pattern, route string) string {
	t.Helper()
	b, err := os.ReadFile(strings.ReplaceAll(pattern, routePlaceholder, route))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRoutedSenderWritesEachRouteToItsFile(t *testing.T) {
	ctx := context.Background()
	s, pattern := newTestRoutedSender(t)
	err := s.SendBatch(ctx, []transport.Record{
		routed("orders", `{"n":1}`), routed("billing", `{"n":2}`), routed("orders", `{"n":3}`),
		{Payload: []byte(`{"n":4}`), Key: []byte("analytics")},                                    // no header: the key routes
		{Payload: []byte(`{"n":5}`), Key: []byte("../../etc/passwd")},                             // not a route name: misc
		{Payload: []byte(`{"n":6}`)},                                                              // no route at all: misc
		routed("Orders", `{"n":7}`),                                                               // not lower-case: misc
		{Payload: []byte(`{"n":8}`), Headers: []transport.Header{{Key: "x", Value: []byte("y")}}}, // no route header: misc
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, routed("billing", `{"n":9}`)); err != nil {
		t.Fatal(err)
	}
	for route, want := range map[string]string{
		"orders":    "{\"n\":1}\n{\"n\":3}\n",
		"billing":   "{\"n\":2}\n{\"n\":9}\n",
		"analytics": "{\"n\":4}\n",
		"misc":      "{\"n\":5}\n{\"n\":6}\n{\"n\":7}\n{\"n\":8}\n",
	} {
		if got := readRoute(t, pattern, route); got != want {
			t.Errorf("route %s: file holds %q, want %q", route, got, want)
		}
	}
	n, err := countRoutes(pattern, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(n) != 4 || n["orders"] != 2 || n["billing"] != 2 || n["analytics"] != 1 || n["misc"] != 4 {
		t.Fatalf("countRoutes: %v", n)
	}
	odd := func(line []byte) bool { return regexp.MustCompile(`"n":[13579]\}`).Match(line) }
	if n, err = countRoutes(pattern, odd); err != nil || n["orders"] != 2 || n["billing"] != 1 || n["analytics"] != 0 || n["misc"] != 2 {
		t.Fatalf("countRoutes of the odd lines: %v %v", n, err)
	}
	if err := s.Health(ctx); err != nil {
		t.Fatalf("health: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, routed("orders", `{}`)); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("send after Close: %v, want ErrClosed", err)
	}
}

func TestRoutedSenderNamesFailedRecordsByTheirBatchIndex(t *testing.T) {
	ctx := context.Background()
	s, pattern := newTestRoutedSender(t)
	// "a\nb" cannot be framed as one line: the billing file sender refuses
	// its second record, index 3 of the whole batch.
	err := s.SendBatch(ctx, []transport.Record{
		routed("orders", `{"n":1}`), routed("billing", `{"n":2}`), routed("orders", `{"n":3}`),
		routed("billing", "a\nb"), routed("billing", `{"n":5}`),
	})
	var be *transport.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("err %v, want a *transport.BatchError", err)
	}
	if got := be.Indices(); !slices.Equal(got, []int{3}) {
		t.Fatalf("failed indices %v, want [3]", got)
	}
	if got := readRoute(t, pattern, "orders"); got != "{\"n\":1}\n{\"n\":3}\n" {
		t.Fatalf("orders: %q", got)
	}
	if got := readRoute(t, pattern, "billing"); got != "{\"n\":2}\n{\"n\":5}\n" {
		t.Fatalf("billing: %q", got)
	}
}

func TestRoutedSenderNeedsTheRoutePlaceholder(t *testing.T) {
	_, err := newRoutedSender(file.Config{Path: "/data/out/events.ndjson"}, "output.file")
	if !errors.Is(err, transport.ErrConfig) || !strings.Contains(err.Error(), "output.file.path") ||
		!strings.Contains(err.Error(), routePlaceholder) {
		t.Fatalf("a path without %s: %v", routePlaceholder, err)
	}
	// The placeholder names the file, not a directory.
	if _, err := newRoutedSender(file.Config{Path: "/data/" + routePlaceholder + "/events.ndjson"}, "output.file"); err == nil {
		t.Fatal("a placeholder in the directory accepted")
	}
}

func TestRouteNameOfAFile(t *testing.T) {
	pattern := filepath.Join("/data", "out", "ev-"+routePlaceholder+".ndjson")
	if got := routeGlob(pattern); got != "/data/out/ev-*.ndjson" {
		t.Fatalf("glob %q", got)
	}
	for path, want := range map[string]string{
		"/data/out/ev-orders.ndjson": "orders",
		"/data/out/ev-.ndjson":       "",
		"/data/out/orders.ndjson":    "",
		"/data/out/ev-orders.json":   "",
	} {
		if got := routeName(pattern, path); got != want {
			t.Errorf("routeName(%s) = %q, want %q", path, got, want)
		}
	}
}
