package engine

import (
	"strings"
	"testing"

	"github.com/keel-go/keel/transport"
)

func recs(sizes ...int) []transport.Record {
	out := make([]transport.Record, len(sizes))
	for i, n := range sizes {
		out[i] = transport.Record{Payload: []byte(strings.Repeat("x", n))}
	}
	return out
}

func shapes(records []transport.Record, target int64) (sizes [][]int, bytes []int64) {
	s := newSubBlocks(records, target)
	for {
		sub, b, ok := s.next()
		if !ok {
			return sizes, bytes
		}
		var row []int
		for _, r := range sub {
			row = append(row, len(r.Payload))
		}
		sizes = append(sizes, row)
		bytes = append(bytes, b)
	}
}

func eq(a, b [][]int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				return false
			}
		}
	}
	return true
}

func TestSubBlockSplitting(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sizes  []int
		target int64
		want   [][]int
	}{
		{"groups_by_target", []int{10, 10, 10, 10, 10}, 25, [][]int{{10, 10}, {10, 10}, {10}}},
		{"exact_fit", []int{10, 15, 25}, 25, [][]int{{10, 15}, {25}}},
		{"oversized_record_is_its_own_sub_block", []int{5, 100, 5}, 20, [][]int{{5}, {100}, {5}}},
		{"empty_input_gives_none", nil, 100, nil},
		{"below_target_is_one", []int{1, 2, 3}, 1000, [][]int{{1, 2, 3}}},
		{"zero_target_is_one_record_each", []int{1, 2, 3}, 0, [][]int{{1}, {2}, {3}}},
		{"negative_target_is_one_record_each", []int{4, 4}, -5, [][]int{{4}, {4}}},
		{"empty_payloads_share_a_sub_block", []int{0, 0, 0, 7}, 5, [][]int{{0, 0, 0}, {7}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, bytes := shapes(recs(tc.sizes...), tc.target)
			if !eq(got, tc.want) {
				t.Fatalf("sub-blocks %v, want %v", got, tc.want)
			}
			for i, row := range got {
				var sum int64
				for _, n := range row {
					sum += int64(n)
				}
				if bytes[i] != sum {
					t.Fatalf("sub-block %d reports %d bytes, holds %d", i, bytes[i], sum)
				}
			}
		})
	}
}

func TestSubBlocksAreDrawnLazily(t *testing.T) {
	records := recs(10, 10, 10, 10, 10, 10)
	s := newSubBlocks(records, 20)
	sub, _, ok := s.next()
	if !ok || len(sub) != 2 {
		t.Fatalf("first sub-block %d records", len(sub))
	}
	if s.pos != 2 {
		t.Fatalf("drain advanced to %d after one sub-block; it must not look ahead", s.pos)
	}
	// The view is capped: appending to it must not overwrite the next
	// sub-block's records.
	next := records[2].Payload
	sub = append(sub, transport.Record{Payload: []byte("intruder")})
	_ = sub
	if string(records[2].Payload) != string(next) {
		t.Fatal("appending to a sub-block overwrote the next record")
	}
	if sub2, _, _ := s.next(); len(sub2) != 2 || string(sub2[0].Payload) != string(next) {
		t.Fatalf("second sub-block %v", sub2)
	}
	if s.pos != 4 {
		t.Fatalf("drain at %d after two sub-blocks", s.pos)
	}
}
