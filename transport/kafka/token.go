package kafka

import (
	"strconv"

	"github.com/keel-go/keel/transport"
)

// Token is the commit token of one Kafka record: its topic, partition and
// offset. Recv returns one *Token per record, aligned with the records
// (Batch.Tokens[i] is the position of Batch.Records[i]; see Position).
//
// A token remembers the assignment of its partition that it was received
// under. Commit commits it only while this member still owns that
// assignment: a token from before a revoke, from another consumer, or
// built by hand is ignored.
type Token struct {
	// Topic is the record's topic.
	Topic string
	// Partition is the record's partition.
	Partition int32
	// Offset is the record's offset; committing the token commits
	// Offset+1.
	Offset int64
	// LeaderEpoch is the partition leader epoch the record was read
	// under, or -1.
	LeaderEpoch int32

	own *ownership
}

// String returns "kafka:<topic>:<partition>:<offset>".
func (t *Token) String() string {
	b := make([]byte, 0, len(t.Topic)+32)
	b = append(b, "kafka:"...)
	b = append(b, t.Topic...)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(t.Partition), 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, t.Offset, 10)
	return string(b)
}

// Position returns the topic, partition and offset of b.Records[i] for a
// batch returned by a Consumer's Recv (whose tokens are aligned with its
// records). ok is false when the batch does not carry a Kafka token at i,
// for example after a process step changed the records.
func Position(b transport.Batch, i int) (tok *Token, ok bool) {
	if i < 0 || i >= len(b.Tokens) || len(b.Tokens) != len(b.Records) {
		return nil, false
	}
	tok, ok = b.Tokens[i].(*Token)
	return tok, ok && tok != nil
}

// ownership is one assignment of one partition to this member. A new one
// is made each time the partition is assigned, so tokens of an earlier
// assignment can be told apart. Its mutable fields are guarded by the
// consumer's mu.
type ownership struct {
	c         *Consumer
	topic     string
	partition int32
	// revoked is set when the partition is revoked or lost.
	revoked bool
	// delivered is the highest offset+1 Recv handed out; committed the
	// highest offset+1 committed. -1 means none.
	delivered int64
	committed int64
}

// tp is a topic partition.
type tp struct {
	topic     string
	partition int32
}
