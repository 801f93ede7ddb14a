package pipe

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/keel-go/keel/transport"
)

// BenchmarkPipeRecv reads 100,000 NDJSON lines from an in-memory reader
// through the Receiver, against a bare bufio.Scanner over the same bytes.
func BenchmarkPipeRecv(b *testing.B) {
	const n = 100_000
	var in bytes.Buffer
	for i := range n {
		fmt.Fprintf(&in, `{"id":%d,"user":"u%06d","event":"page_view","path":"/items/%d","ms":%d,"ok":true}`+"\n", i, i, i%977, i%5000)
	}
	data := in.Bytes()
	b.Run("keel_receiver", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			r, err := NewReceiver(testConfig(bytes.NewReader(data)))
			if err != nil {
				b.Fatal(err)
			}
			got := 0
			for {
				batch, err := r.Recv(context.Background(), transport.Limits{MaxRecords: 1000})
				if errors.Is(err, transport.ErrClosed) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				got += batch.Len()
			}
			_ = r.Close(context.Background())
			if got != n {
				b.Fatalf("read %d lines", got)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("baseline_bufio_scanner", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			sc := bufio.NewScanner(bytes.NewReader(data))
			sc.Buffer(make([]byte, 64<<10), DefaultMaxLineBytes)
			got := 0
			for sc.Scan() {
				_ = append([]byte(nil), sc.Bytes()...)
				got++
			}
			if got != n {
				b.Fatalf("scanned %d lines", got)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}

// BenchmarkPipeSend writes 1000-record batches to io.Discard through the
// Sender (framing checks included), against a bare bufio.Writer.
func BenchmarkPipeSend(b *testing.B) {
	b.Run("keel_sender", func(b *testing.B) {
		cfg := testConfig(nil)
		cfg.Output = io.Discard
		s, err := NewSender(cfg)
		if err != nil {
			b.Fatal(err)
		}
		recs := make([]transport.Record, 1000)
		var size int64
		for i := range recs {
			recs[i].Payload = fmt.Appendf(nil, `{"id":%d,"event":"page_view"}`, i)
			size += int64(len(recs[i].Payload)) + 1
		}
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			if err := s.SendBatch(context.Background(), recs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(1000*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("baseline_bufio_writer", func(b *testing.B) {
		w := bufio.NewWriterSize(io.Discard, DefaultWriteBufferBytes)
		recs := make([][]byte, 1000)
		var size int64
		for i := range recs {
			recs[i] = fmt.Appendf(nil, `{"id":%d,"event":"page_view"}`, i)
			size += int64(len(recs[i])) + 1
		}
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			for _, p := range recs {
				_, _ = w.Write(p)
				_ = w.WriteByte('\n')
			}
			_ = w.Flush()
		}
		b.ReportMetric(1000*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}
