package logging

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/keel-go/keel/metrics"
)

// Benchmarks compare keel's JSON handler (masking on) with a bare
// slog.JSONHandler writing to io.Discard, in the same run:
//
//	go test -run '^$' -bench . -benchmem ./logging/

var benchTime = time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)

func tenAttrs() []any {
	return []any{
		"int", 1,
		"int64", int64(-42),
		"uint64", uint64(7),
		"float", 3.25,
		"string", "some text value",
		"user_id", "u-12345",
		"bool", true,
		"elapsed", 1500 * time.Millisecond,
		"at", benchTime,
		"topic", "orders.v1",
	}
}

func benchRegistry() *metrics.Registry {
	return metrics.New(metrics.Config{Namespace: "bench", NoRuntimeCollectors: true})
}

func keelJSON(addSource bool) *slog.Logger {
	return New(Options{Format: FormatJSON, Output: io.Discard, AddSource: &addSource, Metrics: benchRegistry()})
}

func bareJSON(addSource bool) *slog.Logger {
	return slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{AddSource: addSource}))
}

func benchLoggers(b *testing.B, fn func(b *testing.B, l *slog.Logger)) {
	for _, src := range []bool{false, true} {
		name := "nosource"
		if src {
			name = "source"
		}
		b.Run("bare_slog_json/"+name, func(b *testing.B) { fn(b, bareJSON(src)) })
		b.Run("keel_json/"+name, func(b *testing.B) { fn(b, keelJSON(src)) })
	}
}

// BenchmarkMessage10Attrs is (a): a message plus 10 non-sensitive attributes.
func BenchmarkMessage10Attrs(b *testing.B) {
	attrs := tenAttrs()
	benchLoggers(b, func(b *testing.B, l *slog.Logger) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			l.InfoContext(ctx, "request handled", attrs...)
		}
	})
}

// BenchmarkWith10Context is (b): a logger with 10 context attributes
// (With) plus a message.
func BenchmarkWith10Context(b *testing.B) {
	attrs := tenAttrs()
	benchLoggers(b, func(b *testing.B, l *slog.Logger) {
		l = l.With(attrs...)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			l.InfoContext(ctx, "request handled")
		}
	})
}

// BenchmarkMessage10AttrsSensitive logs the same ten attributes of which
// two have sensitive keys, for the cost of masking them.
func BenchmarkMessage10AttrsSensitive(b *testing.B) {
	attrs := tenAttrs()
	attrs[8], attrs[18] = "db_password", "api_key"
	benchLoggers(b, func(b *testing.B, l *slog.Logger) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			l.InfoContext(ctx, "request handled", attrs...)
		}
	})
}

func BenchmarkSensitiveKey(b *testing.B) {
	for _, key := range []string{"user_id", "topic", "db_password", "X-Api-Key", "requestDurationSeconds"} {
		b.Run(key, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				IsSensitiveKey(key)
			}
		})
	}
}

func BenchmarkMaskString(b *testing.B) {
	for name, s := range map[string]string{
		"clean":  "request handled for user bob in 12ms",
		"kv":     "host=db.local port=5432 user=app password=hunter2 sslmode=require",
		"url":    "dial postgres://app:hunter2@db.local:5432/orders failed",
		"header": "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
		"json":   `{"service":"orders","api_keys":["k1","k2"],"port":8080}`,
		"yaml":   "database:\n  host: db.local\n  password: correct horse staple\ntls:\n  private_key: |\n    -----BEGIN-----\n    MIIE\n    -----END-----\nport: 1\n",
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				MaskString(s)
			}
		})
	}
}

func BenchmarkFloodControlSuppressed(b *testing.B) {
	l := New(Options{Format: FormatJSON, Output: io.Discard, Metrics: benchRegistry(),
		Flood: FloodControl{Rate: 1, Burst: 1}})
	b.ReportAllocs()
	for b.Loop() {
		l.Info("same message")
	}
}

func BenchmarkHelpers(b *testing.B) {
	b.Run("StateChange", func(b *testing.B) {
		var s StateChange[bool]
		b.ReportAllocs()
		for b.Loop() {
			s.Changed(true)
		}
	})
	b.Run("EveryN", func(b *testing.B) {
		e := EveryN{N: 100}
		b.ReportAllocs()
		for b.Loop() {
			e.Allow()
		}
	})
	b.Run("Sampler", func(b *testing.B) {
		s := Every(time.Hour)
		b.ReportAllocs()
		for b.Loop() {
			s.Allow()
		}
	})
}

// BenchmarkPaired runs the bare and the keel handler in alternating
// blocks within one benchmark, so that both see the same machine load,
// and reports each one's ns per line and their ratio (keel/bare). On a
// shared machine this ratio is steadier than two separate benchmarks.
func BenchmarkPaired(b *testing.B) {
	attrs := tenAttrs()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		src  bool
		with bool
	}{
		{"msg10attrs/nosource", false, false},
		{"msg10attrs/source", true, false},
		{"with10ctx/nosource", false, true},
		{"with10ctx/source", true, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bare, keel := bareJSON(tc.src), keelJSON(tc.src)
			args := attrs
			if tc.with {
				bare, keel, args = bare.With(attrs...), keel.With(attrs...), nil
			}
			const block = 128
			var tBare, tKeel time.Duration
			lines := 0
			for b.Loop() {
				t0 := time.Now()
				for range block {
					bare.InfoContext(ctx, "request handled", args...)
				}
				t1 := time.Now()
				for range block {
					keel.InfoContext(ctx, "request handled", args...)
				}
				t2 := time.Now()
				tBare += t1.Sub(t0)
				tKeel += t2.Sub(t1)
				lines += block
			}
			b.ReportMetric(float64(tBare.Nanoseconds())/float64(lines), "bare-ns/line")
			b.ReportMetric(float64(tKeel.Nanoseconds())/float64(lines), "keel-ns/line")
			b.ReportMetric(float64(tKeel)/float64(tBare), "keel/bare")
		})
	}
}
