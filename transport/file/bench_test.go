package file

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/keel-go/keel/transport"
)

const benchLines = 200_000

// benchFile writes an NDJSON file of benchLines records of about 120
// bytes and returns its path and size.
func benchFile(b *testing.B) (string, int64) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.ndjson")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := range benchLines {
		fmt.Fprintf(w, `{"id":%d,"user":"u%06d","event":"page_view","path":"/items/%d","ms":%d,"ok":true}`+"\n", i, i%100000, i%977, i%5000)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	st, _ := f.Stat()
	_ = f.Close()
	return path, st.Size()
}

func reportRecords(b *testing.B, records int) {
	b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkFileRecv reads the whole file per iteration through the
// Receiver (1000-record batches, no commit), against a bare bufio.Scanner
// loop over the same file.
func BenchmarkFileRecv(b *testing.B) {
	path, size := benchFile(b)
	b.Run("keel_receiver", func(b *testing.B) {
		cfg := testConfig(b)
		cfg.Path = path
		cfg.StopAtEOF = true
		b.SetBytes(size)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			cfg.PositionPath = filepath.Join(b.TempDir(), fmt.Sprintf("pos-%d", i))
			r, err := NewReceiver(cfg)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for {
				batch, err := r.Recv(context.Background(), transport.Limits{MaxRecords: 1000})
				if errors.Is(err, transport.ErrClosed) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				n += batch.Len()
			}
			_ = r.Close(context.Background())
			if n != benchLines {
				b.Fatalf("read %d lines", n)
			}
		}
		reportRecords(b, benchLines)
	})
	b.Run("keel_receiver_commit_each_batch", func(b *testing.B) {
		cfg := testConfig(b)
		cfg.Path = path
		cfg.StopAtEOF = true
		b.SetBytes(size)
		for i := 0; b.Loop(); i++ {
			cfg.PositionPath = filepath.Join(b.TempDir(), fmt.Sprintf("pos-%d", i))
			r, err := NewReceiver(cfg)
			if err != nil {
				b.Fatal(err)
			}
			for {
				batch, err := r.Recv(context.Background(), transport.Limits{MaxRecords: 10000})
				if errors.Is(err, transport.ErrClosed) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				if err := r.Commit(context.Background(), batch.Tokens); err != nil {
					b.Fatal(err)
				}
			}
			_ = r.Close(context.Background())
		}
		reportRecords(b, benchLines)
	})
	b.Run("baseline_bufio_scanner", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 64<<10), DefaultMaxLineBytes)
			n, sum := 0, 0
			for sc.Scan() {
				// Copy, as a receiver must: the scanner reuses its buffer.
				p := append([]byte(nil), sc.Bytes()...)
				sum += len(p)
				n++
			}
			_ = f.Close()
			if n != benchLines || sc.Err() != nil {
				b.Fatalf("scanned %d lines: %v", n, sc.Err())
			}
		}
		reportRecords(b, benchLines)
	})
}

// BenchmarkFileSend writes 1000-record batches through the Sender (sync
// none and every_write), against raw os.File writes of the same bytes.
func BenchmarkFileSend(b *testing.B) {
	const batch = 1000
	records := make([]transport.Record, batch)
	var size int64
	for i := range records {
		records[i].Payload = fmt.Appendf(nil, `{"id":%d,"user":"u%06d","event":"page_view","path":"/items/%d","ms":%d,"ok":true}`, i, i, i%977, i%5000)
		size += int64(len(records[i].Payload)) + 1
	}
	// rewind keeps the file small: the figures measure writes, not disk fill.
	rewind := func(b *testing.B, path string, i int) {
		if i%256 == 255 {
			b.StopTimer()
			if err := os.Truncate(path, 0); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	for _, policy := range []SyncPolicy{SyncNone, SyncEveryWrite} {
		b.Run("keel_sender_sync_"+string(policy), func(b *testing.B) {
			cfg := testConfig(b)
			cfg.Sync = policy
			s, err := NewSender(cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := s.SendBatch(context.Background(), records); err != nil {
					b.Fatal(err)
				}
				rewind(b, cfg.Path, i)
			}
			reportRecords(b, batch)
			_ = s.Close(context.Background())
		})
	}
	b.Run("baseline_os_file_write_per_record", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "raw.ndjson")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		line := make([]byte, 0, 256)
		b.SetBytes(size)
		for i := 0; b.Loop(); i++ {
			for j := range records {
				line = append(append(line[:0], records[j].Payload...), '\n')
				if _, err := f.Write(line); err != nil {
					b.Fatal(err)
				}
			}
			rewind(b, path, i)
		}
		reportRecords(b, batch)
		_ = f.Close()
	})
	b.Run("baseline_os_file_write_per_batch", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "raw.ndjson")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 0, size)
		b.SetBytes(size)
		for i := 0; b.Loop(); i++ {
			buf = buf[:0]
			for j := range records {
				buf = append(append(buf, records[j].Payload...), '\n')
			}
			if _, err := f.Write(buf); err != nil {
				b.Fatal(err)
			}
			rewind(b, path, i)
		}
		reportRecords(b, batch)
		_ = f.Close()
	})
}
