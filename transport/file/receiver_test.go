package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
	"github.com/keel-go/keel/transport/internal/logtest"
)

func lines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, `{"id":%d}`+"\n", i)
	}
	return b.String()
}

func ids(from, to int) []string {
	out := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf(`{"id":%d}`, i))
	}
	return out
}

func TestConfigValidation(t *testing.T) {
	bad := []struct {
		cfg Config
		key string
	}{
		{Config{}, "transport.file.path"},
		{Config{Path: "x", PositionPath: "x"}, "transport.file.position_path"},
		{Config{Path: "x", MaxLineBytes: -1}, "transport.file.max_line_bytes"},
		{Config{Path: "x", PollInterval: -time.Second}, "transport.file.poll_interval"},
		{Config{Path: "x", Sync: "always"}, "transport.file.sync"},
		{Config{Path: "x", SyncInterval: -1}, "transport.file.sync_interval"},
		{Config{Path: "x", WriteBufferBytes: -1}, "transport.file.write_buffer_bytes"},
		{Config{Path: "x", Flush: "never", Sync: SyncNone}, "transport.file.flush"},
		{Config{Path: "x", Flush: FlushBytes, Sync: SyncNone, FlushBytes: -1}, "transport.file.flush_bytes"},
		{Config{Path: "x", FlushBytes: 4096}, "transport.file.flush_bytes"},
		{Config{Path: "x", Flush: FlushOnInterval, Sync: SyncNone, FlushInterval: -1}, "transport.file.flush_interval"},
		{Config{Path: "x", Flush: FlushBytes, Sync: SyncNone, FlushInterval: time.Second}, "transport.file.flush_interval"},
		// A lazy flush cannot keep the every_write promise, explicit or default.
		{Config{Path: "x", Flush: FlushOnInterval}, "transport.file.sync"},
		{Config{Path: "x", Flush: FlushBytes, Sync: SyncEveryWrite}, "transport.file.sync"},
	}
	for _, c := range bad {
		for _, err := range []error{c.cfg.Validate(), func() error { _, err := NewReceiver(c.cfg); return err }(), func() error { _, err := NewSender(c.cfg); return err }()} {
			if !errors.Is(err, transport.ErrConfig) || !strings.Contains(err.Error(), c.key) {
				t.Errorf("%+v: got %v, want ErrConfig naming %s", c.cfg, err, c.key)
			}
		}
	}
	got, err := Config{Path: "/d/x.ndjson"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if got.PositionPath != "/d/x.ndjson.pos" || got.MaxLineBytes != DefaultMaxLineBytes || got.PollInterval != DefaultPollInterval ||
		got.Sync != SyncEveryWrite || got.SyncInterval != DefaultSyncInterval || got.WriteBufferBytes != DefaultWriteBufferBytes ||
		got.Flush != FlushBatch || got.FlushBytes != DefaultWriteBufferBytes || got.FlushInterval != DefaultFlushInterval ||
		!got.appendMode() || got.Metrics == nil || got.Logger == nil {
		t.Fatalf("defaults not applied: %+v", got)
	}
	// Under flush bytes the write buffer holds at least flush_bytes.
	got, err = Config{Path: "x", Flush: FlushBytes, Sync: SyncNone, FlushBytes: 1 << 20}.withDefaults()
	if err != nil || got.WriteBufferBytes != 1<<20 {
		t.Fatalf("flush_bytes over the buffer: buffer %d, err %v", got.WriteBufferBytes, err)
	}
	no := false
	if (Config{Append: &no}).appendMode() {
		t.Fatal("Append=false must truncate")
	}
}

func TestRoundTripResumesExactlyAfterCommit(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	s, err := NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var recs []transport.Record
	for _, p := range ids(0, 10) {
		recs = append(recs, transport.Record{Payload: []byte(p)})
	}
	if err := s.SendBatch(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}

	r := newReceiver(t, cfg)
	b := recv(t, r, transport.Limits{MaxRecords: 4})
	equal(t, "first batch", payloads(b), ids(0, 4))
	want := []int64{9, 18, 27, 36}
	equal(t, "offsets", offsets(t, b.Tokens), want)
	for i, tok := range b.Tokens {
		if tok.String() != fmt.Sprintf("file:%d", want[i]) {
			t.Fatalf("token text %q", tok.String())
		}
	}
	if err := r.Commit(ctx, b.Tokens); err != nil {
		t.Fatal(err)
	}
	if got := positionOf(t, cfg); got != 36 {
		t.Fatalf("position file holds %d, want 36", got)
	}
	data, err := os.ReadFile(cfg.Path + ".pos")
	if err != nil || string(data) != "36\n" {
		t.Fatalf("position file content %q, %v", data, err)
	}
	before, err := os.Stat(cfg.Path + ".pos")
	if err != nil {
		t.Fatal(err)
	}
	// Received but not committed: must come back after a restart.
	b = recv(t, r, transport.Limits{MaxRecords: 3})
	equal(t, "uncommitted batch", payloads(b), ids(4, 7))
	// Commit replaces the position file (temporary file + rename); it
	// never rewrites it in place, where a crash could leave it torn.
	if err := r.Commit(ctx, b.Tokens[:1]); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(cfg.Path + ".pos")
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(before, after) {
		t.Fatal("the position file was rewritten in place, not replaced by a rename")
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}

	r2 := newReceiver(t, cfg)
	if r2.Committed() != 45 {
		t.Fatalf("restarted receiver committed = %d", r2.Committed())
	}
	b = recv(t, r2, transport.Limits{})
	equal(t, "after restart", payloads(b), ids(5, 10))
	if err := r2.Commit(ctx, b.Tokens); err != nil {
		t.Fatal(err)
	}
	if err := r2.Close(ctx); err != nil {
		t.Fatal(err)
	}

	r3 := newReceiver(t, cfg)
	recvNothing(t, r3)
	appendFile(t, cfg.Path, lines(10, 11))
	b = recv(t, r3, transport.Limits{})
	equal(t, "appended after full commit", payloads(b), ids(10, 11))

	m := cfg.Metrics.Gatherer()
	if v := testutil.ToFloat64(newFileMetrics(cfg.Metrics).commits); v != 3 {
		t.Fatalf("commits_total = %v, want 3", v)
	}
	if v := testutil.ToFloat64(newFileMetrics(cfg.Metrics).linesRead); v != 4+3+5+1 {
		t.Fatalf("lines_read_total = %v", v)
	}
	if v := testutil.ToFloat64(newFileMetrics(cfg.Metrics).linesWritten); v != 10 {
		t.Fatalf("lines_written_total = %v", v)
	}
	if n, err := testutil.GatherAndCount(m, "keel_file_read_bytes_total"); err != nil || n != 1 {
		t.Fatalf("keel_file_read_bytes_total series = %d, %v", n, err)
	}
	if v := testutil.ToFloat64(newFileMetrics(cfg.Metrics).bytesRead); v != float64(36+27+45+10) {
		t.Fatalf("read_bytes_total = %v", v)
	}
}

func TestPayloadsAreIndependentOfTheReadBuffer(t *testing.T) {
	cfg := testConfig(t)
	appendFile(t, cfg.Path, "aaaa\nbbbb\n")
	r := newReceiver(t, cfg)
	b1 := recv(t, r, transport.Limits{MaxRecords: 1})
	appendFile(t, cfg.Path, "cccc\n")
	b2 := recv(t, r, transport.Limits{})
	b1.Records[0].Payload = append(b1.Records[0].Payload, "XX"...)
	equal(t, "b1", payloads(b1), []string{"aaaaXX"})
	equal(t, "b2", payloads(b2), []string{"bbbb", "cccc"})
	if b2.Records[0].Timestamp.IsZero() {
		t.Fatal("records need a timestamp")
	}
}

func TestPartialLineHeldUntilNewline(t *testing.T) {
	cfg := testConfig(t)
	appendFile(t, cfg.Path, `{"a":1}`+"\n"+`{"b":`)
	r := newReceiver(t, cfg)
	b := recv(t, r, transport.Limits{})
	equal(t, "complete line only", payloads(b), []string{`{"a":1}`})
	recvNothing(t, r)
	appendFile(t, cfg.Path, `2}`)
	recvNothing(t, r)
	appendFile(t, cfg.Path, "\n")
	b = recv(t, r, transport.Limits{})
	equal(t, "joined line", payloads(b), []string{`{"b":2}`})
	equal(t, "offset", offsets(t, b.Tokens), []int64{16})
}

func TestOversizeLineGoesToDeadLetters(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxLineBytes = 16
	big := strings.Repeat("x", 100)
	appendFile(t, cfg.Path, "short1\n"+big+"\nshort2\n")
	r := newReceiver(t, cfg)
	b := recv(t, r, transport.Limits{})
	equal(t, "records", payloads(b), []string{"short1", "short2"})
	equal(t, "tokens", offsets(t, b.Tokens), []int64{7, 108, 115})
	if len(b.DeadLetters) != 1 {
		t.Fatalf("dead letters: %+v", b.DeadLetters)
	}
	dl := b.DeadLetters[0]
	if !strings.Contains(dl.Reason, "100 bytes") || !strings.Contains(dl.Reason, "max_line_bytes 16") {
		t.Fatalf("reason %q must give the size and the limit", dl.Reason)
	}
	if string(dl.Record.Payload) != big[:16] || dl.Source != "file:108" {
		t.Fatalf("dead letter record %q source %q", dl.Record.Payload, dl.Source)
	}
	if err := r.Commit(context.Background(), b.Tokens); err != nil {
		t.Fatal(err)
	}
	if positionOf(t, cfg) != 115 {
		t.Fatal("commit must move past the oversize line")
	}
	if v := testutil.ToFloat64(newFileMetrics(cfg.Metrics).oversize); v != 1 {
		t.Fatalf("oversize_lines_total = %v", v)
	}
}

func TestOversizeWarningsAreRateLimited(t *testing.T) {
	const msg = "line over the size limit sent to dead letters"
	var logs logtest.Recorder
	cfg := testConfig(t)
	cfg.MaxLineBytes = 4
	cfg.Logger = slog.New(&logs)
	big := strings.Repeat("x", 10)
	appendFile(t, cfg.Path, big+"\n"+big+"\n"+big+"\nok\n")
	r := newReceiver(t, cfg)
	r.oversizeLog.Interval = time.Hour // the three lines fall in one interval
	b := recv(t, r, transport.Limits{})
	if len(b.DeadLetters) != 3 {
		t.Fatalf("dead letters: %+v", b.DeadLetters)
	}
	warns := logs.Find(slog.LevelWarn, msg)
	if len(warns) != 1 || warns[0]["offset"] != int64(11) || warns[0]["line_bytes"] != int64(10) ||
		warns[0]["suppressed_since_last"] != uint64(0) {
		t.Fatalf("warnings %v, want one for the first line at offset 11", warns)
	}
	if v := testutil.ToFloat64(newFileMetrics(cfg.Metrics).oversize); v != 3 {
		t.Fatalf("oversize_lines_total = %v: every line is counted, logged or not", v)
	}
	// Once the interval is over, the next warning reports the two held back.
	r.oversizeLog.Interval = 0
	appendFile(t, cfg.Path, big+"\n")
	recv(t, r, transport.Limits{})
	warns = logs.Find(slog.LevelWarn, msg)
	if len(warns) != 2 || warns[1]["suppressed_since_last"] != uint64(2) || warns[1]["offset"] != int64(47) {
		t.Fatalf("warnings %v, want a second one reporting 2 suppressed", warns)
	}
}

func TestOversizeLineSpanningWritesIsSkippedWithBoundedMemory(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxLineBytes = 1 << 10
	appendFile(t, cfg.Path, "a\n")
	r := newReceiver(t, cfg)
	equal(t, "first", payloads(recv(t, r, transport.Limits{})), []string{"a"})
	chunk := strings.Repeat("z", 1<<20)
	for range 4 {
		appendFile(t, cfg.Path, chunk)
		recvNothing(t, r)
		if r.fr.BufferSize() > cfg.MaxLineBytes+2 {
			t.Fatalf("read buffer grew to %d bytes", r.fr.BufferSize())
		}
	}
	appendFile(t, cfg.Path, "\r\nb\n")
	b := recv(t, r, transport.Limits{})
	equal(t, "after", payloads(b), []string{"b"})
	end := int64(2 + 4<<20 + 2)
	equal(t, "tokens", offsets(t, b.Tokens), []int64{end, end + 2})
	if len(b.DeadLetters) != 1 || !strings.Contains(b.DeadLetters[0].Reason, fmt.Sprintf("%d bytes", 4<<20)) {
		t.Fatalf("dead letters %+v", b.DeadLetters)
	}
}

func TestCRLFAndBlankLines(t *testing.T) {
	cfg := testConfig(t)
	appendFile(t, cfg.Path, "a\r\n\r\n\n \t\nb\r\n\n\n")
	r := newReceiver(t, cfg)
	b := recv(t, r, transport.Limits{})
	equal(t, "records", payloads(b), []string{"a", "b"})
	// "a\r\n" ends at 3; "\r\n", "\n", " \t\n" are covered by b's token.
	equal(t, "tokens", offsets(t, b.Tokens), []int64{3, 12})
	if err := r.Commit(context.Background(), b.Tokens); err != nil {
		t.Fatal(err)
	}
	appendFile(t, cfg.Path, "c\n")
	b = recv(t, r, transport.Limits{})
	equal(t, "after trailing blanks", payloads(b), []string{"c"})
	equal(t, "token covers trailing blanks", offsets(t, b.Tokens), []int64{16})
}

func TestLimits(t *testing.T) {
	cfg := testConfig(t)
	appendFile(t, cfg.Path, "0123456789\n0123456789\n0123456789\n0123456789\n0123456789\n"+strings.Repeat("w", 50)+"\n")
	r := newReceiver(t, cfg)
	if b := recv(t, r, transport.Limits{MaxRecords: 2}); b.Len() != 2 || len(b.Tokens) != 2 {
		t.Fatalf("record cap: %d records", b.Len())
	}
	// Soft byte cap: stop once the sum reaches 15: 10 then 20.
	if b := recv(t, r, transport.Limits{MaxBytes: 15}); b.Len() != 2 {
		t.Fatalf("byte cap: %d records", b.Len())
	}
	if b := recv(t, r, transport.Limits{MaxBytes: 1}); b.Len() != 1 {
		t.Fatalf("byte cap floor: %d records", b.Len())
	}
	// A record bigger than the byte cap still comes alone (the floor).
	if b := recv(t, r, transport.Limits{MaxBytes: 5}); b.Len() != 1 || b.PayloadBytes() != 50 {
		t.Fatalf("oversized for the byte cap: %d records, %d bytes", b.Len(), b.PayloadBytes())
	}
}

func TestDeadLettersCountTowardLimits(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxLineBytes = 4
	appendFile(t, cfg.Path, "toolong\ntoolong\nok\n")
	r := newReceiver(t, cfg)
	b := recv(t, r, transport.Limits{MaxRecords: 2})
	if len(b.DeadLetters) != 2 || b.Len() != 0 || len(b.Tokens) != 2 {
		t.Fatalf("got %d dead letters, %d records, %d tokens", len(b.DeadLetters), b.Len(), len(b.Tokens))
	}
}

func TestStaleTemporaryPositionFileIsIgnored(t *testing.T) {
	cfg := testConfig(t)
	appendFile(t, cfg.Path, lines(0, 5))
	r := newReceiver(t, cfg)
	b := recv(t, r, transport.Limits{MaxRecords: 2})
	if err := r.Commit(context.Background(), b.Tokens); err != nil {
		t.Fatal(err)
	}
	_ = r.Close(context.Background())
	// A crash in the middle of a commit leaves a half-written temporary
	// file; it must neither be read nor survive the restart.
	stale := cfg.Path + ".pos" + tmpInfix + "123456"
	if err := os.WriteFile(stale, []byte("99999\x00garb"), 0o644); err != nil {
		t.Fatal(err)
	}
	r2 := newReceiver(t, cfg)
	if r2.Committed() != 18 {
		t.Fatalf("committed %d, want 18", r2.Committed())
	}
	equal(t, "resume", payloads(recv(t, r2, transport.Limits{})), ids(2, 5))
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stale temporary file still there: %v", err)
	}
}

func TestCommitFailureKeepsThePreviousPosition(t *testing.T) {
	cfg := testConfig(t)
	dir := filepath.Dir(cfg.Path)
	cfg.PositionPath = filepath.Join(dir, "pos")
	appendFile(t, cfg.Path, lines(0, 3))
	r := newReceiver(t, cfg)
	b := recv(t, r, transport.Limits{MaxRecords: 1})
	if err := r.Commit(context.Background(), b.Tokens); err != nil {
		t.Fatal(err)
	}
	// Make the rename fail: the position path becomes a non-empty directory.
	if err := os.Remove(cfg.PositionPath); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.PositionPath, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	b = recv(t, r, transport.Limits{})
	err := r.Commit(context.Background(), b.Tokens)
	if !errors.Is(err, transport.ErrCommit) || !strings.Contains(err.Error(), cfg.PositionPath) {
		t.Fatalf("commit = %v, want ErrCommit naming the position file", err)
	}
	if r.Committed() != 9 {
		t.Fatalf("committed moved to %d on failure", r.Committed())
	}
	if r.Health(context.Background()) == nil {
		t.Fatal("health must report the failed commit")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), tmpInfix) {
			t.Fatalf("temporary file %s left behind", e.Name())
		}
	}
	// Repair, and the same tokens commit.
	if err := os.RemoveAll(cfg.PositionPath); err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(context.Background(), b.Tokens); err != nil {
		t.Fatal(err)
	}
	if positionOf(t, cfg) != 27 {
		t.Fatal("retry did not persist")
	}
}

func TestCommitIsCumulativeAndOnlyTakesItsOwnTokens(t *testing.T) {
	cfg := testConfig(t)
	appendFile(t, cfg.Path, lines(0, 4))
	r := newReceiver(t, cfg)
	ctx := context.Background()
	b := recv(t, r, transport.Limits{})
	// Out of order, mixed with a foreign token: the highest own offset wins.
	toks := []transport.Token{b.Tokens[2], inmem.Token{Seq: 1 << 40}, b.Tokens[0]}
	if err := r.Commit(ctx, toks); err != nil {
		t.Fatal(err)
	}
	if r.Committed() != 27 {
		t.Fatalf("committed %d", r.Committed())
	}
	// Lower tokens never move it back.
	if err := r.Commit(ctx, b.Tokens[:1]); err != nil || r.Committed() != 27 {
		t.Fatalf("lower commit: %v, committed %d", err, r.Committed())
	}
	// A hand-built token is not from Recv and is ignored.
	if err := r.Commit(ctx, []transport.Token{Token{Offset: 36}}); err != nil || r.Committed() != 27 {
		t.Fatalf("hand-built token: %v, committed %d", err, r.Committed())
	}
	// A token past what was delivered would skip lines: refused.
	past := b.Tokens[3].(Token)
	past.Offset += 100
	if err := r.Commit(ctx, []transport.Token{past}); !errors.Is(err, transport.ErrCommit) {
		t.Fatalf("token past delivery: %v", err)
	}
	if err := r.Commit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(newFileMetrics(cfg.Metrics).commits); v != 1 {
		t.Fatalf("commits_total = %v, want 1 (no-op commits are not writes)", v)
	}
}

func TestCorruptPositionFileIsAnError(t *testing.T) {
	for _, content := range []string{"", "abc", "-5", "12abc", "1 2", strings.Repeat("1", 100), "99999999999999999999"} {
		cfg := testConfig(t)
		appendFile(t, cfg.Path, lines(0, 2))
		if err := os.WriteFile(cfg.Path+".pos", []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := NewReceiver(cfg)
		if !errors.Is(err, ErrCorruptPosition) || !errors.Is(err, transport.ErrRecv) || !strings.Contains(err.Error(), cfg.Path+".pos") {
			t.Fatalf("content %q: got %v, want ErrCorruptPosition naming the file", content, err)
		}
		if !strings.Contains(err.Error(), "delete it") {
			t.Fatalf("error must say how to fix it: %v", err)
		}
	}
	cfg := testConfig(t)
	appendFile(t, cfg.Path, lines(0, 2))
	if err := os.WriteFile(cfg.Path+".pos", []byte(" 9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newReceiver(t, cfg)
	equal(t, "whitespace around the offset is fine", payloads(recv(t, r, transport.Limits{})), ids(1, 2))
}

func TestTruncatedFileRestartsFromZero(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	appendFile(t, cfg.Path, lines(0, 5))
	r := newReceiver(t, cfg)
	old := recv(t, r, transport.Limits{})
	if err := r.Commit(ctx, old.Tokens[:3]); err != nil {
		t.Fatal(err)
	}
	// copytruncate: the file is cut to zero and new lines arrive.
	if err := os.Truncate(cfg.Path, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, cfg.Path, "new1\nnew2\n")
	b := recv(t, r, transport.Limits{})
	equal(t, "new content", payloads(b), []string{"new1", "new2"})
	equal(t, "offsets from 0", offsets(t, b.Tokens), []int64{5, 10})
	if positionOf(t, cfg) != 0 {
		t.Fatal("the reset must be persisted so a restart reads the new content from 0")
	}
	// Late commits of the old content do nothing.
	if err := r.Commit(ctx, old.Tokens); err != nil || r.Committed() != 0 {
		t.Fatalf("old tokens: %v, committed %d", err, r.Committed())
	}
	if err := r.Commit(ctx, b.Tokens); err != nil || positionOf(t, cfg) != 10 {
		t.Fatalf("new tokens: %v", err)
	}
	if v := testutil.ToFloat64(newFileMetrics(cfg.Metrics).resets); v != 1 {
		t.Fatalf("resets_total = %v", v)
	}
}

func TestShorterFileAtStartRestartsFromZero(t *testing.T) {
	cfg := testConfig(t)
	appendFile(t, cfg.Path, lines(0, 2))
	if err := os.WriteFile(cfg.Path+".pos", []byte("1000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newReceiver(t, cfg)
	equal(t, "from zero", payloads(recv(t, r, transport.Limits{})), ids(0, 2))
	if positionOf(t, cfg) != 0 {
		t.Fatal("reset not persisted")
	}
}

func TestRotatedFileIsReadAfterTheOldOne(t *testing.T) {
	cfg := testConfig(t)
	appendFile(t, cfg.Path, lines(0, 2))
	r := newReceiver(t, cfg)
	b := recv(t, r, transport.Limits{})
	equal(t, "old", payloads(b), ids(0, 2))
	if err := r.Commit(context.Background(), b.Tokens); err != nil {
		t.Fatal(err)
	}
	rotated := cfg.Path + ".1"
	if err := os.Rename(cfg.Path, rotated); err != nil {
		t.Fatal(err)
	}
	// The writer still had the old file open and wrote one more line.
	appendFile(t, rotated, lines(2, 3))
	appendFile(t, cfg.Path, "fresh\n")
	equal(t, "old file drained first", payloads(recv(t, r, transport.Limits{})), ids(2, 3))
	b = recv(t, r, transport.Limits{})
	equal(t, "new file", payloads(b), []string{"fresh"})
	equal(t, "new offsets", offsets(t, b.Tokens), []int64{6})
	if err := r.Commit(context.Background(), b.Tokens); err != nil || positionOf(t, cfg) != 6 {
		t.Fatalf("commit on the new file: %v", err)
	}
}

func TestCancelDuringRecvLosesNothing(t *testing.T) {
	cfg := testConfig(t)
	appendFile(t, cfg.Path, lines(0, 5))
	r := newReceiver(t, cfg)
	equal(t, "first", payloads(recv(t, r, transport.Limits{MaxRecords: 2})), ids(0, 2))

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if b, err := r.Recv(cancelled, transport.Limits{}); !errors.Is(err, context.Canceled) || !b.IsEmpty() {
		t.Fatalf("cancelled Recv = %+v, %v", b, err)
	}
	equal(t, "buffered lines survive", payloads(recv(t, r, transport.Limits{})), ids(2, 5))

	// Cancel while Recv waits at the end of the file.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		b, err := r.Recv(ctx, transport.Limits{})
		if !b.IsEmpty() {
			err = fmt.Errorf("cancelled Recv returned data: %+v", b)
		}
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("waiting Recv = %v", err)
	}
	appendFile(t, cfg.Path, lines(5, 7))
	b := recv(t, r, transport.Limits{})
	equal(t, "after cancel", payloads(b), ids(5, 7))
	equal(t, "contiguous tokens", offsets(t, b.Tokens), []int64{54, 63})
}

func TestMissingFile(t *testing.T) {
	t.Run("follower waits", func(t *testing.T) {
		cfg := testConfig(t)
		r := newReceiver(t, cfg)
		recvNothing(t, r)
		if err := r.Health(context.Background()); err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("health while waiting: %v", err)
		}
		appendFile(t, cfg.Path, lines(0, 1))
		equal(t, "appeared", payloads(recv(t, r, transport.Limits{})), ids(0, 1))
		if err := r.Health(context.Background()); err != nil {
			t.Fatalf("health after the file appeared: %v", err)
		}
	})
	t.Run("stop at EOF fails", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.StopAtEOF = true
		r := newReceiver(t, cfg)
		_, err := r.Recv(context.Background(), transport.Limits{})
		if !errors.Is(err, transport.ErrRecv) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), cfg.Path) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("not a regular file", func(t *testing.T) {
		cfg := testConfig(t)
		if err := os.Mkdir(cfg.Path, 0o755); err != nil {
			t.Fatal(err)
		}
		r := newReceiver(t, cfg)
		if _, err := r.Recv(context.Background(), transport.Limits{}); !errors.Is(err, transport.ErrRecv) || !strings.Contains(err.Error(), "regular file") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestStopAtEOF(t *testing.T) {
	cfg := testConfig(t)
	cfg.StopAtEOF = true
	appendFile(t, cfg.Path, "a\nb\n\nlast")
	r := newReceiver(t, cfg)
	b := recv(t, r, transport.Limits{MaxRecords: 1})
	equal(t, "first", payloads(b), []string{"a"})
	b = recv(t, r, transport.Limits{})
	equal(t, "rest with the unterminated last line", payloads(b), []string{"b", "last"})
	equal(t, "offsets", offsets(t, b.Tokens), []int64{4, 9})
	for range 2 {
		if _, err := r.Recv(context.Background(), transport.Limits{}); !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("at the end: %v, want ErrClosed", err)
		}
	}
}

func TestCloseWakesRecvAndRefusesCalls(t *testing.T) {
	cfg := testConfig(t)
	appendFile(t, cfg.Path, "")
	r := newReceiver(t, cfg)
	done := make(chan error, 1)
	go func() {
		_, err := r.Recv(context.Background(), transport.Limits{})
		done <- err
	}()
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Recv after Close = %v", err)
	}
	if err := r.Commit(context.Background(), nil); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Commit after Close = %v", err)
	}
	if err := r.Health(context.Background()); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Health after Close = %v", err)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if r.Name() != "file" {
		t.Fatal(r.Name())
	}
}

func TestConcurrentRecvAndCommit(t *testing.T) {
	cfg := testConfig(t)
	const n = 2000
	appendFile(t, cfg.Path, lines(0, n))
	r := newReceiver(t, cfg)
	toks := make(chan []transport.Token, 8)
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		for ts := range toks {
			if err := r.Commit(context.Background(), ts); err != nil {
				errc <- err
				return
			}
		}
	}()
	var got []string
	for len(got) < n {
		b := recv(t, r, transport.Limits{MaxRecords: 37})
		got = append(got, payloads(b)...)
		toks <- b.Tokens
	}
	close(toks)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	equal(t, "all lines in order", got, ids(0, n))
	if fi, _ := os.Stat(cfg.Path); positionOf(t, cfg) != fi.Size() {
		t.Fatalf("final position %d, file size %d", positionOf(t, cfg), fi.Size())
	}
}
