package transport

import (
	"time"

	"github.com/keel-go/keel/codec"
)

// Header is one record header. Values are bytes, as in Kafka.
type Header struct {
	Key   string
	Value []byte
}

// Record is one payload moving through a pipeline. It carries no commit
// token: tokens belong to the Batch.
type Record struct {
	// Payload is the record body. Transports hand out slices they no longer
	// write to; a process step may keep them.
	Payload []byte
	// Key is the optional record key (Kafka key, routing key). Nil means none.
	Key []byte
	// Headers are optional record headers.
	Headers []Header
	// Timestamp is the source timestamp, or the receive time when the
	// source has none.
	Timestamp time.Time
	// Format is the payload format; Auto means detect on parse.
	Format codec.Format
}

// Header returns the value of the first header named key.
func (r *Record) Header(key string) ([]byte, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// Token is an input commit token (a Kafka offset, a file position, a
// sequence number). String returns a stable text form such as
// "kafka:orders:3:1042", "file:8812" or "inmem:17", used in logs and
// dead-letter entries. A Receiver commits only the tokens of its own type.
type Token interface {
	String() string
}

// DeadLetter is a record that will not be delivered downstream, with the
// reason. Receivers put records removed by an inbound dead-letter filter
// here (their tokens stay in Batch.Tokens); process steps add records they
// cannot handle.
type DeadLetter struct {
	// Record is the original record.
	Record Record
	// Reason says why, e.g. "parse error: unexpected end of input".
	Reason string
	// Destination is an optional routing hint (the filter's route, the
	// intended table or topic).
	Destination string
	// Source is the text form of the token the record came from, when known.
	Source string
}
