package admin

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keel-go/keel/health"
	"github.com/keel-go/keel/metrics"
)

// BenchmarkReadyz serves /readyz through the full handler (routing,
// instrumentation, a readiness run of one check, JSON), without a network.
func BenchmarkReadyz(b *testing.B) {
	reg := health.New(health.Config{Logger: slog.New(slog.DiscardHandler)})
	reg.MarkStarted()
	_ = reg.Register("c", func(context.Context) (health.Status, string) { return health.Healthy, "" })
	srv, err := New(Config{}, Deps{Health: reg, Metrics: metrics.New(metrics.Config{NoRuntimeCollectors: true}), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkBaselineStaticJSON is the floor: a bare handler writing a fixed
// JSON body.
func BenchmarkBaselineStaticJSON(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
	}
}
