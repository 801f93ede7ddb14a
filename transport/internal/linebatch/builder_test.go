package linebatch

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/internal/linesplit"
)

// tok is a test token.
type tok string

func (t tok) String() string { return "t:" + string(t) }

func TestBuilderCopiesLinesOutOfTheSourceBuffer(t *testing.T) {
	b := New(transport.Limits{}, Hint{})
	src := []byte("aaa")
	b.AddLine(src, tok("1"))
	b.AddLine([]byte("bbb"), tok("2"))
	copy(src, "zzz") // the framing buffer is reused
	batch, _ := b.Batch(time.Unix(1, 0))
	first := batch.Records[0].Payload
	if string(first) != "aaa" || string(batch.Records[1].Payload) != "bbb" {
		t.Fatalf("payloads %q %q", first, batch.Records[1].Payload)
	}
	if cap(first) != len(first) {
		t.Fatalf("payload capacity %d > length %d: an append would overwrite the next record", cap(first), len(first))
	}
	_ = append(first, 'X')
	if string(batch.Records[1].Payload) != "bbb" {
		t.Fatalf("appending to one payload changed the next: %q", batch.Records[1].Payload)
	}
	if batch.Records[0].Format != codec.JSON {
		t.Fatalf("format %v, want JSON", batch.Records[0].Format)
	}
}

func TestBuilderLineLongerThanAnArenaChunk(t *testing.T) {
	b := New(transport.Limits{}, Hint{})
	b.AddLine([]byte("x"), tok("1"))
	long := bytes.Repeat([]byte("y"), arenaChunk+10)
	b.AddLine(long, tok("2"))
	b.AddLine([]byte("z"), tok("3"))
	batch, _ := b.Batch(time.Time{})
	got := []string{string(batch.Records[0].Payload), string(batch.Records[1].Payload), string(batch.Records[2].Payload)}
	if got[0] != "x" || got[1] != string(long) || got[2] != "z" {
		t.Fatalf("payloads of lengths %d %d %d", len(got[0]), len(got[1]), len(got[2]))
	}
}

func TestBuilderLimits(t *testing.T) {
	line := []byte("0123456789")
	fill := func(l transport.Limits, dead bool) int {
		b := New(l, Hint{})
		for i := 0; !b.Full(); i++ {
			if i == 100 {
				t.Fatalf("limits %+v never full", l)
			}
			if dead {
				b.AddDeadLetter(line, "too long", tok("d"))
			} else {
				b.AddLine(line, tok("l"))
			}
		}
		return b.Len()
	}
	cases := []struct {
		name  string
		l     transport.Limits
		dead  bool
		count int
	}{
		{"record cap", transport.Limits{MaxRecords: 3}, false, 3},
		{"soft byte cap", transport.Limits{MaxBytes: 15}, false, 2},
		{"byte cap floor of one record", transport.Limits{MaxBytes: 1}, false, 1},
		{"dead letters count toward the record cap", transport.Limits{MaxRecords: 4}, true, 4},
		{"dead letter bytes count toward the byte cap", transport.Limits{MaxBytes: 25}, true, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if n := fill(c.l, c.dead); n != c.count {
				t.Fatalf("full after %d entries, want %d", n, c.count)
			}
		})
	}
	// Zero limits mean the default record cap.
	b := New(transport.Limits{}, Hint{})
	for range transport.DefaultMaxRecords - 1 {
		b.AddLine(line, tok("l"))
	}
	if b.Full() {
		t.Fatal("full before the default record cap")
	}
	b.AddLine(line, tok("l"))
	if !b.Full() {
		t.Fatal("not full at the default record cap")
	}
	if b := New(transport.Limits{MaxRecords: 1}, Hint{}); b.Full() {
		t.Fatal("an empty builder is never full")
	}
}

func TestBuilderBatchOrderTokensDeadLettersAndTimestamps(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	b := New(transport.Limits{}, Hint{})
	b.AddLine([]byte("a"), tok("1"))
	prefix := []byte("xxxx")
	b.AddDeadLetter(prefix, "line of 10 bytes", tok("2"))
	b.AddLine([]byte("b"), tok("3"))
	batch, hint := b.Batch(now)
	if len(batch.Tokens) != 3 || batch.Tokens[0] != tok("1") || batch.Tokens[1] != tok("2") || batch.Tokens[2] != tok("3") {
		t.Fatalf("tokens %v, want every entry's token in order", batch.Tokens)
	}
	if len(batch.Records) != 2 || len(batch.DeadLetters) != 1 {
		t.Fatalf("%d records, %d dead letters", len(batch.Records), len(batch.DeadLetters))
	}
	dl := batch.DeadLetters[0]
	if string(dl.Record.Payload) != "xxxx" || dl.Reason != "line of 10 bytes" || dl.Source != "t:2" || dl.Record.Format != codec.JSON {
		t.Fatalf("dead letter %+v", dl)
	}
	for _, r := range append(batch.Records, dl.Record) {
		if !r.Timestamp.Equal(now) {
			t.Fatalf("timestamp %v, want %v", r.Timestamp, now)
		}
	}
	if hint != (Hint{Entries: 3, Bytes: 6}) {
		t.Fatalf("hint %+v, want 3 entries of 6 bytes", hint)
	}
}

func TestBuilderSizesAfterTheHint(t *testing.T) {
	cases := []struct {
		name  string
		l     transport.Limits
		hint  Hint
		cap   int
		arena int
	}{
		{"trickle", transport.Limits{}, Hint{}, minBatchCap, arenaChunk},
		{"steady stream", transport.Limits{}, Hint{Entries: 500, Bytes: 200 << 10}, 500, 200 << 10},
		{"capped by the record limit", transport.Limits{MaxRecords: 100}, Hint{Entries: 500}, 100, arenaChunk},
		{"first arena block capped", transport.Limits{}, Hint{Entries: 10, Bytes: 64 << 20}, minBatchCap, maxFirstArena},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := New(c.l, c.hint)
			b.AddLine([]byte("a"), tok("1"))
			if cap(b.recs) != c.cap || cap(b.toks) != c.cap || cap(b.arena) != c.arena {
				t.Fatalf("capacities records %d tokens %d arena %d, want %d, %d, %d",
					cap(b.recs), cap(b.toks), cap(b.arena), c.cap, c.cap, c.arena)
			}
		})
	}
}

func TestEmptyBuilderAllocatesNothing(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		b := New(transport.Limits{}, Hint{Entries: 1000, Bytes: 1 << 20})
		if batch, _ := b.Batch(time.Time{}); !batch.IsEmpty() {
			t.Fatal("empty builder built a non-empty batch")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations for an empty batch", allocs)
	}
}

func TestOversizeReason(t *testing.T) {
	fr := linesplit.Frame{Kind: linesplit.Oversize, Line: []byte("abcd"), End: 99, Size: 12345}
	got := OversizeReason(fr, "transport.test", 4)
	for _, want := range []string{"12345 bytes", "transport.test.max_line_bytes 4", "first 4 bytes"} {
		if !strings.Contains(got, want) {
			t.Fatalf("reason %q lacks %q", got, want)
		}
	}
}
