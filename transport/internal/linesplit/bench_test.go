package linesplit

import (
	"bufio"
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkFramer frames 1 MiB-limited NDJSON from a reader in 64 KiB
// reads, against bufio.Scanner splitting the same input (the baseline,
// which holds whole lines and cannot skip an oversize one).
func BenchmarkFramer(b *testing.B) {
	var in bytes.Buffer
	const lines = 20000
	for i := range lines {
		fmt.Fprintf(&in, `{"id":%d,"name":"record-%d","ok":true,"tags":["a","b","c"]}`+"\n", i, i)
	}
	data := in.Bytes()
	b.Run("framer", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			r := bytes.NewReader(data)
			f := New(1 << 20)
			n := 0
			for {
				k, err := r.Read(f.Space())
				f.Wrote(k)
				for fr := f.Next(); fr.Kind != None; fr = f.Next() {
					n++
				}
				if err != nil {
					break
				}
			}
			if n != lines {
				b.Fatalf("framed %d lines, want %d", n, lines)
			}
		}
		b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	})
	b.Run("baseline_bufio_scanner", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			s := bufio.NewScanner(bytes.NewReader(data))
			s.Buffer(make([]byte, 0, MinReadBuffer), 1<<20)
			n := 0
			for s.Scan() {
				n++
			}
			if n != lines {
				b.Fatalf("scanned %d lines, want %d", n, lines)
			}
		}
		b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	})
}
