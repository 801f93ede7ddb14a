package dlq_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/dlq"
)

// benchEntries returns n entries with a payload of about size bytes.
func benchEntries(n, size int) []dlq.Entry {
	payload := []byte(`{"msg":"` + strings.Repeat("x", max(size-10, 0)) + `"}`)
	out := make([]dlq.Entry, n)
	for i := range out {
		out[i] = dlq.Entry{Time: time.UnixMilli(1711432800123), Service: "bench", Reason: "parse error: unexpected end of input",
			Payload: payload, Destination: "orders", Source: dlq.SourceFromToken("kafka:events:3:12345")}
	}
	return out
}

// BenchmarkFileThroughput compares entries/s through the DLQ (encode,
// queue, batch, file backend, one fsync per second and at the final
// Flush) with raw NDJSON writes of the same bytes to an os.File in batches
// of the same size, fsynced once at the end, in the same run.
func BenchmarkFileThroughput(b *testing.B) {
	const batch = 256
	es := benchEntries(batch, 200)
	lines := make([][]byte, len(es))
	for i := range es {
		lines[i] = es[i].AppendJSON(nil)
	}
	var lineBytes int
	for _, l := range lines {
		lineBytes += len(l) + 1
	}
	perEntry := float64(lineBytes) / float64(len(lines))

	b.Run("dlq_queue_file", func(b *testing.B) {
		dir := b.TempDir()
		q, err := dlq.New(context.Background(), dlq.Config{Enabled: true, BatchSize: batch, File: dlq.FileConfig{Enabled: true, Path: dir}},
			dlq.Options{Service: "bench", Metrics: newReg(), Logger: quietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := q.Push(ctx, es[i%batch]); err != nil {
				b.Fatal(err)
			}
		}
		if err := q.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		report(b, perEntry)
		if err := q.Close(ctx); err != nil {
			b.Fatal(err)
		}
	})

	b.Run("dlq_queue_file_push_batch", func(b *testing.B) {
		dir := b.TempDir()
		q, err := dlq.New(context.Background(), dlq.Config{Enabled: true, BatchSize: batch, File: dlq.FileConfig{Enabled: true, Path: dir}},
			dlq.Options{Service: "bench", Metrics: newReg(), Logger: quietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i += batch {
			n := min(batch, b.N-i)
			if err := q.Push(ctx, es[:n]...); err != nil {
				b.Fatal(err)
			}
		}
		if err := q.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		report(b, perEntry)
		if err := q.Close(ctx); err != nil {
			b.Fatal(err)
		}
	})

	b.Run("raw_ndjson_write", func(b *testing.B) {
		f, err := os.OpenFile(filepath.Join(b.TempDir(), "raw.ndjson"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		var buf bytes.Buffer
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			buf.Write(lines[i%batch])
			buf.WriteByte('\n')
			if (i+1)%batch == 0 || i == b.N-1 {
				if _, err := f.Write(buf.Bytes()); err != nil {
					b.Fatal(err)
				}
				buf.Reset()
			}
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		report(b, perEntry)
	})

	b.Run("raw_encode_and_write", func(b *testing.B) {
		f, err := os.OpenFile(filepath.Join(b.TempDir(), "raw.ndjson"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		var buf []byte
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			buf = es[i%batch].AppendJSON(buf)
			buf = append(buf, '\n')
			if (i+1)%batch == 0 || i == b.N-1 {
				if _, err := f.Write(buf); err != nil {
					b.Fatal(err)
				}
				buf = buf[:0]
			}
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		report(b, perEntry)
	})
}

func report(b *testing.B, perEntry float64) {
	s := b.Elapsed().Seconds()
	if s <= 0 {
		return
	}
	b.ReportMetric(float64(b.N)/s, "entries/s")
	b.ReportMetric(float64(b.N)*perEntry/s/1e6, "MB/s")
}

// BenchmarkEncode measures one entry's JSON against encoding/json of the
// same shape.
func BenchmarkEncode(b *testing.B) {
	e := benchEntries(1, 200)[0]
	b.Run("append_json", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for i := 0; i < b.N; i++ {
			buf = e.AppendJSON(buf[:0])
		}
	})
	b.Run("decode", func(b *testing.B) {
		line := e.AppendJSON(nil)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := dlq.Decode(line); err != nil {
				b.Fatal(err)
			}
		}
	})
}
