package pipelinebench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/bytedance/sonic"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/file"
)

// inputBytes is the size of the generated NDJSON file: 1 GiB by default,
// KEEL_PIPELINE_BYTES to change it (the test uses a small file).
func inputBytes(b testing.TB) int64 {
	if s := os.Getenv("KEEL_PIPELINE_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("KEEL_PIPELINE_BYTES=%q: want a positive byte count", s)
		}
		return n
	}
	return 1 << 30
}

var (
	genOnce sync.Once
	genDir  string
	genPath string
	genRecs int
	genErr  error
)

// generate writes an NDJSON file of ~170-byte log lines once per process.
func generate(dir string, size int64) (string, int, error) {
	path := filepath.Join(dir, "input.ndjson")
	f, err := os.Create(path)
	if err != nil {
		return "", 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var written int64
	n := 0
	levels := []string{"info", "warn", "error", "debug"}
	for written < size {
		line := fmt.Sprintf(`{"timestamp":"2026-01-01T00:00:%02d.%06dZ","level":"%s","service":"api","msg":"request completed","status":%d,"latency_ms":%d.5,"path":"/v1/items/%d"}`+"\n",
			n%60, n%1000000, levels[n%4], 200+n%5, n%500, n)
		k, err := w.WriteString(line)
		if err != nil {
			f.Close()
			return "", 0, err
		}
		written += int64(k)
		n++
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", 0, err
	}
	return path, n, f.Close()
}

func input(b testing.TB) (string, int) {
	genOnce.Do(func() {
		genDir, genErr = os.MkdirTemp("", "keel-pipeline-")
		if genErr != nil {
			return
		}
		genPath, genRecs, genErr = generate(genDir, inputBytes(b))
	})
	if genErr != nil {
		b.Fatal(genErr)
	}
	return genPath, genRecs
}

// runKeel moves every line of in to out through the file transports and
// the engine's pre-parsed path, adding a field to each record, and returns
// the number of records written.
func runKeel(ctx context.Context, in, out string) (int, error) {
	reg := metrics.New(metrics.Config{Namespace: "bench", NoRuntimeCollectors: true})
	src, err := file.NewReceiver(file.Config{Path: in, PositionPath: out + ".pos", StopAtEOF: true, Metrics: reg})
	if err != nil {
		return 0, err
	}
	defer src.Close(ctx)
	appendFalse := false
	dst, err := file.NewSender(file.Config{Path: out, Append: &appendFalse, Sync: file.SyncNone, WriteBufferBytes: 1 << 20, Metrics: reg})
	if err != nil {
		return 0, err
	}
	eng, err := engine.New(engine.Config{MaxRecords: 10000, Metrics: reg})
	if err != nil {
		return 0, err
	}
	written := 0
	process := func(_ context.Context, pb *engine.ParsedBatch) (transport.Batch, error) {
		for _, v := range pb.Values {
			if err := v.Set("pipeline", "keel"); err != nil {
				return transport.Batch{}, err
			}
		}
		return pb.Output(), nil
	}
	sink := func(ctx context.Context, b transport.Batch) error {
		written += b.Len()
		return dst.SendBatch(ctx, b.Records)
	}
	if err := eng.RunParsed(ctx, src, process, sink); err != nil {
		return written, err
	}
	return written, dst.Close(ctx)
}

// runBaseline does the same work with bufio, sonic and a map, no framework.
func runBaseline(in, out string) (int, error) {
	f, err := os.Open(in)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	o, err := os.Create(out)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(o, 1<<20)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		var m map[string]any
		if err := sonic.Unmarshal(sc.Bytes(), &m); err != nil {
			o.Close()
			return n, err
		}
		m["pipeline"] = "keel"
		b, err := sonic.Marshal(m)
		if err != nil {
			o.Close()
			return n, err
		}
		w.Write(b)
		w.WriteByte('\n')
		n++
	}
	if err := sc.Err(); err != nil {
		o.Close()
		return n, err
	}
	if err := w.Flush(); err != nil {
		o.Close()
		return n, err
	}
	return n, o.Close()
}

// TestMain removes the generated input (1 GiB by default) after the run.
func TestMain(m *testing.M) {
	code := m.Run()
	if genDir != "" {
		os.RemoveAll(genDir)
	}
	os.Exit(code)
}

// BenchmarkPipeline is file -> parse, add a field, re-encode -> file over a
// 1 GiB NDJSON file (KEEL_PIPELINE_BYTES to change), keel against the bare
// loop in the same run.
func BenchmarkPipeline(b *testing.B) {
	in, recs := input(b)
	st, err := os.Stat(in)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		run  func(out string) (int, error)
	}{
		{"Baseline", func(out string) (int, error) { return runBaseline(in, out) }},
		{"Keel", func(out string) (int, error) { return runKeel(context.Background(), in, out) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(st.Size())
			for i := 0; i < b.N; i++ {
				out := filepath.Join(b.TempDir(), "out.ndjson")
				n, err := bc.run(out)
				if err != nil {
					b.Fatal(err)
				}
				if n != recs {
					b.Fatalf("wrote %d records, want %d", n, recs)
				}
				os.Remove(out)
			}
			b.ReportMetric(float64(recs)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// TestPipelineSmall runs the same pipeline over a small file and checks that
// every record arrives once, transformed, in order.
func TestPipelineSmall(t *testing.T) {
	dir := t.TempDir()
	in, n, err := generate(dir, 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.ndjson")
	written, err := runKeel(context.Background(), in, out)
	if err != nil && !errors.Is(err, transport.ErrClosed) {
		t.Fatal(err)
	}
	if written != n {
		t.Fatalf("wrote %d, want %d", written, n)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	i := 0
	for sc.Scan() {
		var m map[string]any
		if err := sonic.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if m["pipeline"] != "keel" || m["path"] != fmt.Sprintf("/v1/items/%d", i) {
			t.Fatalf("line %d not transformed in order: %v", i, m)
		}
		i++
	}
	if i != n {
		t.Fatalf("output has %d lines, want %d", i, n)
	}
}
