package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

// validSegment returns a segment file with n records.
func validSegment(id, first uint64, c codec, payloads ...[]byte) []byte {
	b := segHeader{version: formatVersion, codec: c, id: id, first: first, created: 1}.encode()
	for i, p := range payloads {
		b = appendFrame(b, first+uint64(i), int64(i), p)
	}
	return b
}

func seedSegments() [][]byte {
	good := validSegment(1, 1, codecNone, []byte("a"), []byte(`{"id":2}`), bytes.Repeat([]byte("z"), 300), nil)
	flipped := bytes.Clone(good)
	flipped[segHeaderSize+frameHeaderSize] ^= 0xFF
	badLen := bytes.Clone(good)
	binary.LittleEndian.PutUint32(badLen[segHeaderSize+24:], 0xFFFFFFF0)
	magicRun := append(bytes.Clone(good[:segHeaderSize]), bytes.Repeat(frameMagic[:], 64)...)
	return [][]byte{
		good,
		good[:len(good)-5],
		flipped,
		badLen,
		magicRun,
		good[:segHeaderSize],
		good[:10],
		{},
	}
}

// FuzzScanner feeds arbitrary bytes to the frame scanner and checks that
// it never panics, that what it reports tiles the input exactly, and that
// every frame it accepts is intact and in sequence.
func FuzzScanner(f *testing.F) {
	for _, s := range seedSegments() {
		f.Add(s, uint64(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, minSeq uint64) {
		var sc scanner
		sc.reset(bytesReaderAt(data), int64(len(data)))
		off := int64(0)
		next := minSeq
		for steps := 0; ; steps++ {
			if steps > len(data)+1 {
				t.Fatal("scanner does not advance")
			}
			it, err := sc.next(off, next, anySeq)
			if err != nil {
				t.Fatal(err)
			}
			if it.off != off {
				t.Fatalf("item at %d, asked for %d", it.off, off)
			}
			if it.kind == itemEnd {
				if off != int64(len(data)) {
					t.Fatalf("end at %d of %d", off, len(data))
				}
				return
			}
			if it.size <= 0 || off+it.size > int64(len(data)) {
				t.Fatalf("item size %d at %d of %d", it.size, off, len(data))
			}
			if it.kind == itemFrame {
				fr := data[off : off+it.size]
				crc := crc32.Update(crc32.Checksum(fr[8:28], castagnoli), castagnoli, fr[frameHeaderSize:])
				if crc != binary.LittleEndian.Uint32(fr[4:8]) || it.seq < next {
					t.Fatalf("accepted a bad frame at %d", off)
				}
				next = it.seq + 1
			}
			off += it.size
		}
	})
}

// FuzzOpenSegment writes arbitrary bytes as a spool's oldest segment (with a
// valid one after it), opens the spool and drains it: Open and the reader
// must never panic, and everything the valid segment holds must come out.
func FuzzOpenSegment(f *testing.F) {
	for _, s := range seedSegments() {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, asNewest bool) {
		dir := t.TempDir()
		later := validSegment(2, 1000, codecNone, []byte("tail-1"), []byte("tail-2"))
		if err := os.WriteFile(filepath.Join(dir, segName(1)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if !asNewest {
			if err := os.WriteFile(filepath.Join(dir, segName(2)), later, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cfg := Config{Dir: dir, MinFreeBytes: -1, Sync: SyncNever, Metrics: testRegistry(), Logger: quietLogger(), fsync: noFsync}
		s, err := Open(context.Background(), cfg)
		if err != nil {
			if errors.Is(err, ErrCorrupt) {
				return // a valid header of an unknown version or codec
			}
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		var got []Entry
		for {
			es, err := s.TryPeek(50, 0)
			if err != nil {
				t.Fatalf("TryPeek: %v", err)
			}
			if len(es) == 0 {
				break
			}
			got = append(got, es...)
		}
		for i := 1; i < len(got); i++ {
			if got[i].Seq <= got[i-1].Seq {
				t.Fatalf("seq %d after %d", got[i].Seq, got[i-1].Seq)
			}
		}
		if !asNewest {
			n := len(got)
			if n < 2 || string(got[n-2].Payload) != "tail-1" || string(got[n-1].Payload) != "tail-2" {
				t.Fatalf("the intact segment did not come out whole: %d entries", n)
			}
		}
		if n := len(got); n > 0 {
			if err := s.Ack(got[n-1].Seq); err != nil {
				t.Fatal(err)
			}
			if s.Len() != 0 || s.Bytes() != 0 {
				t.Fatalf("after acking all: Len %d Bytes %d", s.Len(), s.Bytes())
			}
		}
	})
}

// FuzzZstdPayloads stores arbitrary bytes as intact frames of a zstd
// segment: the decoder must reject what is not zstd without panicking or
// allocating without bound, and count it.
func FuzzZstdPayloads(f *testing.F) {
	f.Add([]byte("not zstd"), []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0x00, 0x00})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []byte{})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(1)), validSegment(1, 1, codecZstd, a, b), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(context.Background(), Config{Dir: dir, MinFreeBytes: -1, Sync: SyncNever, Metrics: testRegistry(), Logger: quietLogger(), fsync: noFsync})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		es, err := s.TryPeek(10, 0)
		if err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); uint64(len(es))+st.LostRecords != 2 {
			t.Fatalf("%d delivered + %d lost != 2", len(es), st.LostRecords)
		}
	})
}

// FuzzLedger opens a spool whose ledger holds arbitrary bytes: a damaged
// ledger is rebuilt, never trusted beyond the segments.
func FuzzLedger(f *testing.F) {
	good := ledgerState{gen: 3, next: 5, read: 4, acked: 2}.encode()
	f.Add(append(bytes.Clone(good), ledgerState{gen: 2, next: 4, read: 1, acked: 1}.encode()...))
	f.Add(good)
	f.Add([]byte("garbage"))
	f.Add(ledgerState{gen: 9, next: 1 << 62, read: 1 << 61, acked: 1 << 60}.encode())
	f.Fuzz(func(t *testing.T, ledger []byte) {
		dir := t.TempDir()
		seg := validSegment(1, 1, codecNone, []byte("1"), []byte("2"), []byte("3"), []byte("4"))
		if err := os.WriteFile(filepath.Join(dir, segName(1)), seg, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ledgerName), ledger, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(context.Background(), Config{Dir: dir, MinFreeBytes: -1, Sync: SyncNever, Metrics: testRegistry(), Logger: quietLogger(), fsync: noFsync})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		es, err := s.TryPeek(10, 0)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(es)) != s.Len() {
			t.Fatalf("delivered %d, Len %d", len(es), s.Len())
		}
		q, err := s.Append(context.Background(), []byte("new"))
		if err != nil {
			t.Fatal(err)
		}
		if len(es) > 0 && q <= es[len(es)-1].Seq {
			t.Fatalf("new seq %d not after %d", q, es[len(es)-1].Seq)
		}
	})
}

// noFsync skips fsync: the fuzz targets test parsing, not durability.
func noFsync(*os.File) error { return nil }
