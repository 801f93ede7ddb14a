package spool

import (
	"bytes"
	"context"
	"os"
	"testing"
)

func compressible(i int) []byte {
	return []byte(string(payloadOf(i)) + string(bytes.Repeat([]byte(`,"msg":"the quick brown fox"`), 20)))
}

func TestCompressionChangeAcrossRestarts(t *testing.T) {
	cfg := testConfig(t)
	cfg.SegmentBytes = 64 << 10
	phases := []Compression{CompressionNone, CompressionZstd, CompressionNone, CompressionZstd}
	id := 0
	for _, c := range phases {
		cfg.Compression = c
		s := mustOpen(t, cfg)
		for range 20 {
			if _, err := s.Append(context.Background(), compressible(id)); err != nil {
				t.Fatal(err)
			}
			id++
		}
		mustClose(t, s)
	}
	// One segment per run, each with the codec of its run.
	files := segFiles(t, cfg.Dir)
	if len(files) != len(phases) {
		t.Fatalf("%d segments, want %d", len(files), len(phases))
	}
	for i, f := range files {
		h, _, err := readSegHeader(f)
		if err != nil {
			t.Fatal(err)
		}
		if h.codec != codecOf(phases[i]) {
			t.Fatalf("segment %d codec %s, want %s", i, h.codec, phases[i])
		}
	}
	if none, zstd := fileSize(t, files[0]), fileSize(t, files[1]); zstd*2 > none {
		t.Fatalf("zstd segment %d bytes vs %d uncompressed: not compressed", zstd, none)
	}
	// Whatever the configuration now, every record reads back.
	for _, c := range []Compression{CompressionNone, CompressionZstd} {
		cfg.Compression = c
		s := mustOpen(t, cfg)
		got := drain(t, s)
		if len(got) != id {
			t.Fatalf("read %d records, want %d", len(got), id)
		}
		for i, e := range got {
			if !bytes.Equal(e.Payload, compressible(i)) {
				t.Fatalf("record %d = %q", i, e.Payload)
			}
		}
		mustClose(t, s)
	}
}

func TestCompressedAccountingAndEmptyPayload(t *testing.T) {
	cfg := testConfig(t)
	cfg.Compression = CompressionZstd
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	if _, err := s.Append(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), compressible(1)); err != nil {
		t.Fatal(err)
	}
	// Bytes are the stored (compressed) frames.
	if s.Bytes() >= int64(len(compressible(1))) {
		t.Fatalf("Bytes %d not below the raw payload size", s.Bytes())
	}
	es := drain(t, s)
	if len(es) != 2 || len(es[0].Payload) != 0 || !bytes.Equal(es[1].Payload, compressible(1)) {
		t.Fatalf("got %v", es)
	}
}

func TestUndecodablePayloadIsSkipped(t *testing.T) {
	cfg := testConfig(t)
	cfg.Compression = CompressionZstd
	s := mustOpen(t, cfg)
	for i := range 3 {
		if _, err := s.Append(context.Background(), compressible(i)); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, s)
	// Rewrite the middle frame with a valid checksum over bytes that are
	// not zstd: only the codec can notice.
	path := segFiles(t, cfg.Dir)[0]
	offs, sizes, seqs := frameSpans(t, path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte{0x42}, int(sizes[1])-frameHeaderSize)
	frame := appendFrame(nil, seqs[1], 0, junk)
	copy(b[offs[1]:], frame)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, cfg)
	defer mustClose(t, s)
	got := drain(t, s)
	if len(got) != 2 || !bytes.Equal(got[1].Payload, compressible(2)) {
		t.Fatalf("got %d records", len(got))
	}
	st := s.Stats()
	if corruptionsOf(s, KindDecode) != 1 || st.LostRecords != 1 || st.Records != 2 {
		t.Fatalf("stats %+v", st)
	}
	// A rewind re-reads the bad frame without counting it again.
	s.Rewind()
	if again := drain(t, s); len(again) != 2 {
		t.Fatalf("after rewind: %d records", len(again))
	}
	if corruptionsOf(s, KindDecode) != 1 || s.Stats().Records != 2 {
		t.Fatalf("counted twice: %+v", s.Stats())
	}
}
