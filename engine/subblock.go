package engine

import "github.com/keel-go/keel/transport"

// subBlocks draws consecutive sub-blocks from a block's records, one per
// call to next, without building them ahead: each sub-block is a view of
// the records (no copy) whose capacity ends at its last record, so a
// process step that appends to it cannot overwrite the next sub-block.
//
// The rule: a sub-block takes records in order while the sum of their
// payload sizes stays within the target, and always takes at least one
// record, so a record larger than the target is a sub-block of its own and
// a target of 0 (or less) gives one record per sub-block.
type subBlocks struct {
	records []transport.Record
	pos     int
	target  int64
}

func newSubBlocks(records []transport.Record, target int64) *subBlocks {
	return &subBlocks{records: records, target: target}
}

// next returns the next sub-block and its payload bytes, or ok false when
// every record was drawn.
func (s *subBlocks) next() (sub []transport.Record, bytes int64, ok bool) {
	if s.pos >= len(s.records) {
		return nil, 0, false
	}
	start := s.pos
	bytes = int64(len(s.records[start].Payload))
	end := start + 1
	for end < len(s.records) {
		n := int64(len(s.records[end].Payload))
		if bytes+n > s.target {
			break
		}
		bytes += n
		end++
	}
	s.pos = end
	return s.records[start:end:end], bytes, true
}
