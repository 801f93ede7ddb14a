package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/secret"
)

func benchManager(b *testing.B, cfg Config) *Manager {
	b.Helper()
	m, err := New(context.Background(), cfg, Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: metrics.New(metrics.Config{NoRuntimeCollectors: true}),
		LookupEnv: envMap(map[string]string{"BENCH_PW": "bench-password-value"}),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// BenchmarkGetCached is the hot path: a fresh value from the memory cache.
func BenchmarkGetCached(b *testing.B) {
	m := benchManager(b, Config{Sources: map[string]SourceConfig{"pw": {Ref: "env:BENCH_PW"}}})
	ctx := context.Background()
	if _, err := m.Get(ctx, "pw"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Get(ctx, "pw"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkBaselineMutexMap is the floor for BenchmarkGetCached: a string
// read from a map under a mutex and wrapped as a secret.
func BenchmarkBaselineMutexMap(b *testing.B) {
	var mu sync.Mutex
	mp := map[string][]byte{"env:BENCH_PW": []byte("bench-password-value")}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			v := mp["env:BENCH_PW"]
			mu.Unlock()
			_ = secret.New(string(v))
		}
	})
}

// BenchmarkDiskSealOpen seals and opens one cache entry (no file I/O).
func BenchmarkDiskSealOpen(b *testing.B) {
	dc, err := openDiskCache(b.TempDir(), secret.New("bench-cache-key-0123456789"))
	if err != nil {
		b.Fatal(err)
	}
	e := diskEntry{Data: make([]byte, 256), Provider: "vault", Version: "7", FetchedAt: time.Now()}
	b.ReportAllocs()
	b.SetBytes(int64(len(e.Data)))
	for b.Loop() {
		raw, err := dc.seal("vault:secret/data/x#y", e)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := dc.open("vault:secret/data/x#y", raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBaselineAESGCM is the floor for BenchmarkDiskSealOpen: raw
// AES-256-GCM seal and open of the same payload.
func BenchmarkBaselineAESGCM(b *testing.B) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	blk, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(blk)
	nonce := make([]byte, g.NonceSize())
	data := make([]byte, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_, _ = rand.Read(nonce)
		ct := g.Seal(nil, nonce, data, []byte("aad"))
		if _, err := g.Open(nil, nonce, ct, []byte("aad")); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiskStore writes one entry atomically (temp file, fsync,
// rename).
func BenchmarkDiskStore(b *testing.B) {
	dc, err := openDiskCache(b.TempDir(), secret.New("bench-cache-key-0123456789"))
	if err != nil {
		b.Fatal(err)
	}
	e := diskEntry{Data: make([]byte, 256), FetchedAt: time.Now()}
	for b.Loop() {
		if err := dc.store("env:X", e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRef(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRef("vault:secret/data/kafka#password"); err != nil {
			b.Fatal(err)
		}
	}
}
