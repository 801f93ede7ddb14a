package dlq_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/health"
)

// wantHealth checks q.Health against want and a fragment of its message.
func wantHealth(t *testing.T, q *dlq.DLQ, want health.Status, fragment string) {
	t.Helper()
	got, msg := q.Health(context.Background())
	if got != want || !strings.Contains(msg, fragment) {
		t.Fatalf("Health = %v %q, want %v with %q", got, msg, want, fragment)
	}
}

func TestHealthUnhealthyWhileNoBackendTakesEntries(t *testing.T) {
	fb := &failingBackend{name: "flaky", fail: true, failed: make(chan struct{}, 1)}
	q, _ := newDLQ(t, dlq.Config{MaxAttempts: -1, RetryBackoff: time.Millisecond}, dlq.Options{Backends: []dlq.Backend{fb}})
	wantHealth(t, q, health.Healthy, "")
	ctx := ctxT(t)
	res := make(chan error, 1)
	go func() { res <- q.Write(ctx, entries(0, 2)...) }()
	recv(t, fb.failed)
	wantHealth(t, q, health.Unhealthy, "flaky is down")
	fb.set(false)
	if err := recv(t, res); err != nil {
		t.Fatalf("Write across an outage: %v", err)
	}
	wantHealth(t, q, health.Healthy, "")
}

func TestHealthDegradedWhileTheCascadeFallsThrough(t *testing.T) {
	first := &failingBackend{name: "first", fail: true}
	second := &failingBackend{name: "second"}
	q, _ := newDLQ(t, dlq.Config{}, dlq.Options{Backends: []dlq.Backend{first, second}})
	ctx := ctxT(t)
	must(t, q.Write(ctx, entry(0)))
	wantHealth(t, q, health.Degraded, "first: ")
	first.set(false)
	must(t, q.Write(ctx, entry(1)))
	wantHealth(t, q, health.Healthy, "")
}

func TestHealthUnhealthyForAWhileAfterADrop(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	fb := &failingBackend{name: "down", fail: true}
	q, _ := newDLQ(t, dlq.Config{MaxAttempts: 2, RetryBackoff: time.Millisecond}, dlq.Options{Backends: []dlq.Backend{fb}, Clock: clock})
	ctx := ctxT(t)
	if err := q.Write(ctx, entry(0)); !errors.Is(err, dlq.ErrAllBackendsFailed) {
		t.Fatalf("Write to a failing backend: %v", err)
	}
	wantHealth(t, q, health.Unhealthy, "dropped")
	clock.Add(dlq.HealthDropWindow)
	// The drop is old news; the backend's last write still failed.
	wantHealth(t, q, health.Degraded, "down is down")
	fb.set(false)
	must(t, q.Write(ctx, entry(1)))
	wantHealth(t, q, health.Healthy, "")
}

func TestHealthDisabledAndClosed(t *testing.T) {
	off, err := dlq.New(ctxT(t), dlq.Config{}, dlq.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	wantHealth(t, off, health.Healthy, "disabled")
	q, _ := newDLQ(t, dlq.Config{}, dlq.Options{Backends: []dlq.Backend{&failingBackend{name: "ok"}}})
	must(t, q.Close(ctxT(t)))
	wantHealth(t, q, health.Unhealthy, "closed")
}
