package codec

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/bytedance/sonic"
	"github.com/vmihailenco/msgpack/v5"
)

// Benchmarks parse a block of ~170-byte JSON log lines (and the same
// records in MsgPack) with Parse, and with the bare libraries as the
// baseline in the same run. See BENCHMARKS.md.

const blockSize = 1000

var (
	levels   = []string{"info", "warn", "error", "debug"}
	services = []string{"api", "billing", "auth", "search"}
	paths    = []string{"/v1/items", "/v1/orders", "/v1/users/me", "/healthz"}
)

func logRecord(i int) map[string]any {
	return map[string]any{
		"timestamp":  fmt.Sprintf("2026-01-01T00:%02d:%02dZ", i/60%60, i%60),
		"level":      levels[i%len(levels)],
		"service":    services[i/3%len(services)],
		"msg":        "request completed",
		"status":     200 + i%5,
		"latency_ms": 12.5 + float64(i%100)/10,
		"path":       paths[i/7%len(paths)],
		"request_id": fmt.Sprintf("req-%08x", uint32(i)*2654435761),
	}
}

// jsonBlock returns n records of about 170 bytes shaped like
// {"timestamp":"2026-01-01T00:00:00Z","level":"info",...,"request_id":"req-9e3779b1"}.
func jsonBlock(n int) ([][]byte, int64) {
	out := make([][]byte, n)
	var total int64
	for i := range out {
		r := logRecord(i)
		out[i] = fmt.Appendf(nil,
			`{"timestamp":%q,"level":%q,"service":%q,"msg":%q,"status":%d,"latency_ms":%g,"path":%q,"request_id":%q}`,
			r["timestamp"], r["level"], r["service"], r["msg"], r["status"], r["latency_ms"], r["path"], r["request_id"])
		total += int64(len(out[i]))
	}
	return out, total
}

func msgpackBlock(tb testing.TB, n int) ([][]byte, int64) {
	out := make([][]byte, n)
	var total int64
	for i := range out {
		b, err := msgpack.Marshal(logRecord(i))
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = b
		total += int64(len(b))
	}
	return out, total
}

func runBlock(b *testing.B, block [][]byte, total int64, parse func([]byte) error) {
	b.Helper()
	b.SetBytes(total)
	b.ReportAllocs()
	cpu := cpuNow()
	for b.Loop() {
		for _, rec := range block {
			if err := parse(rec); err != nil {
				b.Fatal(err)
			}
		}
	}
	cpu = cpuNow() - cpu
	b.ReportMetric(float64(b.N*len(block))/b.Elapsed().Seconds(), "records/s")
	// Throughput per CPU-second: steadier than MB/s on a shared machine.
	b.ReportMetric(float64(total)*float64(b.N)/cpu.Seconds()/1e6, cpuClock+"_MB/s")
}

func BenchmarkParseJSON(b *testing.B) {
	block, total := jsonBlock(blockSize)
	b.Run("baseline_sonic", func(b *testing.B) {
		runBlock(b, block, total, func(rec []byte) error {
			var m map[string]any
			return sonic.Unmarshal(rec, &m)
		})
	})
	b.Run("baseline_encoding_json", func(b *testing.B) {
		runBlock(b, block, total, func(rec []byte) error {
			var m map[string]any
			return json.Unmarshal(rec, &m)
		})
	})
	b.Run("keel", func(b *testing.B) {
		runBlock(b, block, total, func(rec []byte) error {
			_, err := Parse(rec, ParseOptions{})
			return err
		})
	})
	b.Run("keel_zerocopy", func(b *testing.B) {
		runBlock(b, block, total, func(rec []byte) error {
			_, err := Parse(rec, ParseOptions{ZeroCopy: true})
			return err
		})
	})
	b.Run("keel_interner", func(b *testing.B) {
		in, _ := NewInterner(InternerConfig{})
		runBlock(b, block, total, func(rec []byte) error {
			_, err := Parse(rec, ParseOptions{Interner: in})
			return err
		})
	})
	b.Run("guard_scan_only", func(b *testing.B) {
		runBlock(b, block, total, func(rec []byte) error {
			_, err := JSONDepth(rec, DefaultMaxDepth)
			return err
		})
	})
}

func BenchmarkParseMsgPack(b *testing.B) {
	block, total := msgpackBlock(b, blockSize)
	b.Run("baseline_msgpack", func(b *testing.B) {
		runBlock(b, block, total, func(rec []byte) error {
			var m map[string]any
			return msgpack.Unmarshal(rec, &m)
		})
	})
	b.Run("keel", func(b *testing.B) {
		runBlock(b, block, total, func(rec []byte) error {
			_, err := Parse(rec, ParseOptions{})
			return err
		})
	})
	b.Run("keel_interner", func(b *testing.B) {
		in, _ := NewInterner(InternerConfig{})
		runBlock(b, block, total, func(rec []byte) error {
			_, err := Parse(rec, ParseOptions{Interner: in})
			return err
		})
	})
	b.Run("guard_walk_only", func(b *testing.B) {
		runBlock(b, block, total, func(rec []byte) error {
			_, err := MsgPackDepth(rec, DefaultMaxDepth)
			return err
		})
	})
}

// interleave times two parsers over the same block in alternation and
// reports ours/theirs throughput. The block is cut into chunks of 50
// records timed in ABBA order, and the clock is the process CPU time (see
// cpuNow), so load from other processes on a shared machine lands on both
// sides alike instead of skewing the ratio.
func interleave(b *testing.B, block [][]byte, total int64, base, ours func([]byte) error) {
	b.Helper()
	const chunk = 50
	var tBase, tOurs time.Duration
	pass := func(f func([]byte) error, recs [][]byte) time.Duration {
		start := cpuNow()
		for _, rec := range recs {
			if err := f(rec); err != nil {
				b.Fatal(err)
			}
		}
		return cpuNow() - start
	}
	b.SetBytes(2 * total)
	flip := false
	for b.Loop() {
		for i := 0; i < len(block); i += chunk {
			recs := block[i:min(i+chunk, len(block))]
			if flip {
				tOurs += pass(ours, recs)
				tBase += pass(base, recs)
			} else {
				tBase += pass(base, recs)
				tOurs += pass(ours, recs)
			}
			flip = !flip
		}
	}
	b.ReportMetric(tBase.Seconds()/tOurs.Seconds(), "throughput_ratio")
	b.ReportMetric(float64(total)*float64(b.N)/tOurs.Seconds()/1e6, "ours_"+cpuClock+"_MB/s")
	b.ReportMetric(float64(total)*float64(b.N)/tBase.Seconds()/1e6, "base_"+cpuClock+"_MB/s")
}

// BenchmarkRatio reports the throughput of Parse as a fraction of the bare
// library on the same records, measured in alternation.
func BenchmarkRatio(b *testing.B) {
	jb, jt := jsonBlock(blockSize)
	mb, mt := msgpackBlock(b, blockSize)
	sonicBase := func(rec []byte) error {
		var m map[string]any
		return sonic.Unmarshal(rec, &m)
	}
	in, _ := NewInterner(InternerConfig{})
	b.Run("json_vs_sonic", func(b *testing.B) {
		interleave(b, jb, jt, sonicBase, func(rec []byte) error {
			_, err := Parse(rec, ParseOptions{})
			return err
		})
	})
	b.Run("json_zerocopy_vs_sonic", func(b *testing.B) {
		interleave(b, jb, jt, sonicBase, func(rec []byte) error {
			_, err := Parse(rec, ParseOptions{ZeroCopy: true})
			return err
		})
	})
	b.Run("json_interner_vs_sonic", func(b *testing.B) {
		interleave(b, jb, jt, sonicBase, func(rec []byte) error {
			_, err := Parse(rec, ParseOptions{Interner: in})
			return err
		})
	})
	b.Run("json_vs_encoding_json", func(b *testing.B) {
		interleave(b, jb, jt, func(rec []byte) error {
			var m map[string]any
			return json.Unmarshal(rec, &m)
		}, func(rec []byte) error {
			_, err := Parse(rec, ParseOptions{})
			return err
		})
	})
	b.Run("msgpack_vs_msgpack", func(b *testing.B) {
		interleave(b, mb, mt, func(rec []byte) error {
			var m map[string]any
			return msgpack.Unmarshal(rec, &m)
		}, func(rec []byte) error {
			_, err := Parse(rec, ParseOptions{})
			return err
		})
	})
	b.Run("msgpack_interner_vs_msgpack", func(b *testing.B) {
		interleave(b, mb, mt, func(rec []byte) error {
			var m map[string]any
			return msgpack.Unmarshal(rec, &m)
		}, func(rec []byte) error {
			_, err := Parse(rec, ParseOptions{Interner: in})
			return err
		})
	})
}

func BenchmarkField(b *testing.B) {
	rec, _ := jsonBlock(1)
	v, err := Parse(rec[0], ParseOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if s, ok := v.Field("level").Str(); !ok || s == "" {
			b.Fatal("no level")
		}
		if n, ok := v.Field("status").Int(); !ok || n == 0 {
			b.Fatal("no status")
		}
	}
}

func BenchmarkInterner(b *testing.B) {
	in, _ := NewInterner(InternerConfig{})
	key := []byte("latency_ms")
	in.InternBytes(key)
	b.Run("hit_bytes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = in.InternBytes(key)
		}
	})
	b.Run("hit_parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = in.Intern("latency_ms")
			}
		})
	})
}

func BenchmarkReencode(b *testing.B) {
	jb, _ := jsonBlock(1)
	mb, _ := msgpackBlock(b, 1)
	for name, rec := range map[string][]byte{"json": jb[0], "msgpack": mb[0]} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(rec)))
			b.ReportAllocs()
			for b.Loop() {
				v, err := Parse(rec, ParseOptions{})
				if err != nil {
					b.Fatal(err)
				}
				_ = v.Set("enriched", true)
				if _, err := v.Bytes(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
