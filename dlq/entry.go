package dlq

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/keel-go/keel/internal/jsonstr"
	"github.com/keel-go/keel/transport"
)

// Entry is one dead-lettered record with why and where it came from.
//
// Its JSON form is one object per line:
//
//	{"timestamp":1711432800123,"service":"loader","reason":"schema mismatch","attempts":0,
//	 "payload":"eyJpZCI6N30=","destination":"acme.auth",
//	 "source":{"topic":"events","partition":3,"offset":12345,"token":"kafka:events:3:12345"}}
//
// timestamp is Unix milliseconds (UTC), payload standard base64 with
// padding. destination and source are left out when empty, and so is each
// field of source. The original record's key and headers, when it had any,
// follow as "key" (base64) and "headers" ([{"key":"trace-id","value":<base64>}]),
// so that a replay can restore the record whole.
type Entry struct {
	// Time is when the record was dead-lettered. It is kept to the
	// millisecond. The DLQ sets it when it is zero.
	Time time.Time
	// Service is the service that dead-lettered the record. The DLQ sets
	// it when it is empty.
	Service string
	// Reason says why, e.g. "parse error: unexpected end of input".
	Reason string
	// Attempts is how often delivery was tried (0 when it never was, as
	// for a record that failed to parse).
	Attempts int
	// Payload is the original record body.
	Payload []byte
	// Destination is the intended table, topic or route, when known.
	Destination string
	// Source says where the record came from, when known.
	Source *Source
	// Key is the original record's key; nil when it had none.
	Key []byte
	// Headers are the original record's headers, in order.
	Headers []transport.Header
}

// Source is where a dead-lettered record came from: a Kafka position, the
// text of the input's commit token, or both.
type Source struct {
	// Topic is the Kafka topic (or another source's stream name).
	Topic string
	// Partition is the Kafka partition, nil when unknown.
	Partition *int32
	// Offset is the Kafka offset, nil when unknown.
	Offset *int64
	// Token is the text of the input's commit token, such as
	// "kafka:orders:3:1042", "file:8812" or "inmem:17".
	Token string
}

// KafkaSource returns the Source of a Kafka record.
func KafkaSource(topic string, partition int32, offset int64) *Source {
	return &Source{Topic: topic, Partition: &partition, Offset: &offset}
}

// SourceFromToken returns the Source of a commit token's text. A Kafka
// token ("kafka:<topic>:<partition>:<offset>") also fills the topic,
// partition and offset; any other text is kept as the token only. An empty
// text gives nil.
func SourceFromToken(text string) *Source {
	if text == "" {
		return nil
	}
	s := &Source{Token: text}
	rest, ok := strings.CutPrefix(text, "kafka:")
	if !ok {
		return s
	}
	// Topic names cannot hold ':', but parse from the right anyway.
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return s
	}
	off, err := strconv.ParseInt(rest[i+1:], 10, 64)
	if err != nil || off < 0 {
		return s
	}
	rest = rest[:i]
	j := strings.LastIndexByte(rest, ':')
	if j <= 0 {
		return s
	}
	p, err := strconv.ParseInt(rest[j+1:], 10, 32)
	if err != nil || p < 0 {
		return s
	}
	part := int32(p)
	s.Topic, s.Partition, s.Offset = rest[:j], &part, &off
	return s
}

// IsZero reports a Source with nothing in it.
func (s *Source) IsZero() bool {
	return s == nil || (s.Topic == "" && s.Partition == nil && s.Offset == nil && s.Token == "")
}

// AppendJSON appends the entry's JSON object (no newline) to dst.
func (e *Entry) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"timestamp":`...)
	dst = strconv.AppendInt(dst, e.Time.UnixMilli(), 10)
	dst = append(dst, `,"service":`...)
	dst = jsonstr.AppendQuoted(dst, e.Service)
	dst = append(dst, `,"reason":`...)
	dst = jsonstr.AppendQuoted(dst, e.Reason)
	dst = append(dst, `,"attempts":`...)
	dst = strconv.AppendInt(dst, int64(e.Attempts), 10)
	dst = append(dst, `,"payload":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, e.Payload)
	dst = append(dst, '"')
	if e.Destination != "" {
		dst = append(dst, `,"destination":`...)
		dst = jsonstr.AppendQuoted(dst, e.Destination)
	}
	if !e.Source.IsZero() {
		s := e.Source
		dst = append(dst, `,"source":{`...)
		sep := false
		field := func(name string) {
			if sep {
				dst = append(dst, ',')
			}
			sep = true
			dst = append(dst, '"')
			dst = append(dst, name...)
			dst = append(dst, `":`...)
		}
		if s.Topic != "" {
			field("topic")
			dst = jsonstr.AppendQuoted(dst, s.Topic)
		}
		if s.Partition != nil {
			field("partition")
			dst = strconv.AppendInt(dst, int64(*s.Partition), 10)
		}
		if s.Offset != nil {
			field("offset")
			dst = strconv.AppendInt(dst, *s.Offset, 10)
		}
		if s.Token != "" {
			field("token")
			dst = jsonstr.AppendQuoted(dst, s.Token)
		}
		dst = append(dst, '}')
	}
	if e.Key != nil {
		dst = append(dst, `,"key":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, e.Key)
		dst = append(dst, '"')
	}
	if len(e.Headers) > 0 {
		dst = append(dst, `,"headers":[`...)
		for i, h := range e.Headers {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"key":`...)
			dst = jsonstr.AppendQuoted(dst, h.Key)
			dst = append(dst, `,"value":"`...)
			dst = base64.StdEncoding.AppendEncode(dst, h.Value)
			dst = append(dst, `"}`...)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler.
func (e Entry) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

// UnmarshalJSON implements json.Unmarshaler with the rules of Decode.
func (e *Entry) UnmarshalJSON(b []byte) error {
	out, err := Decode(b)
	if err != nil {
		return err
	}
	*e = out
	return nil
}

// wireEntry is the decoding form of an Entry.
type wireEntry struct {
	Timestamp   json.RawMessage `json:"timestamp"`
	Service     string          `json:"service"`
	Reason      *string         `json:"reason"`
	Attempts    int64           `json:"attempts"`
	Payload     *string         `json:"payload"`
	Destination string          `json:"destination"`
	Source      *wireSource     `json:"source"`
	Key         *string         `json:"key"`
	Headers     []wireHeader    `json:"headers"`
}

type wireHeader struct {
	Key   string  `json:"key"`
	Value *string `json:"value"`
}

type wireSource struct {
	Topic     string `json:"topic"`
	Partition *int32 `json:"partition"`
	Offset    *int64 `json:"offset"`
	Token     string `json:"token"`
}

// Decode parses one entry's JSON object. It needs timestamp (Unix
// milliseconds, or an RFC 3339 string, kept to the millisecond), reason and
// payload (standard base64, padded); the other fields are optional and
// unknown fields are ignored. Attempts, partition and offset must not be
// negative. Every failure matches ErrMalformedEntry and says which field.
// Decode never panics, whatever the input.
func Decode(b []byte) (Entry, error) {
	var w wireEntry
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return Entry{}, malformed("not a JSON entry object")
	}
	if err := json.Unmarshal(b, &w); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) && strings.Contains(se.Error(), "after top-level value") {
			return Entry{}, malformed("data after the entry object")
		}
		return Entry{}, malformed("not a JSON entry object: %v", err)
	}
	var e Entry
	if len(w.Timestamp) == 0 || string(w.Timestamp) == "null" {
		return Entry{}, malformed("timestamp is missing")
	}
	t, err := decodeTime(w.Timestamp)
	if err != nil {
		return Entry{}, err
	}
	e.Time = t
	if w.Reason == nil {
		return Entry{}, malformed("reason is missing")
	}
	e.Reason = *w.Reason
	if w.Payload == nil {
		return Entry{}, malformed("payload is missing")
	}
	p, err := base64.StdEncoding.Strict().DecodeString(*w.Payload)
	if err != nil {
		return Entry{}, malformed("payload is not standard base64: %v", err)
	}
	e.Payload = p
	if w.Attempts < 0 || w.Attempts > math.MaxInt32 {
		return Entry{}, malformed("attempts %d out of range 0..%d", w.Attempts, math.MaxInt32)
	}
	e.Attempts = int(w.Attempts)
	e.Service = w.Service
	e.Destination = w.Destination
	if w.Source != nil {
		s := &Source{Topic: w.Source.Topic, Partition: w.Source.Partition, Offset: w.Source.Offset, Token: w.Source.Token}
		if s.Partition != nil && *s.Partition < 0 {
			return Entry{}, malformed("source.partition %d is negative", *s.Partition)
		}
		if s.Offset != nil && *s.Offset < 0 {
			return Entry{}, malformed("source.offset %d is negative", *s.Offset)
		}
		if !s.IsZero() {
			e.Source = s
		}
	}
	if w.Key != nil {
		k, err := base64.StdEncoding.Strict().DecodeString(*w.Key)
		if err != nil {
			return Entry{}, malformed("key is not standard base64: %v", err)
		}
		e.Key = k
	}
	for i, h := range w.Headers {
		var v []byte
		if h.Value != nil {
			if v, err = base64.StdEncoding.Strict().DecodeString(*h.Value); err != nil {
				return Entry{}, malformed("headers[%d].value is not standard base64: %v", i, err)
			}
		}
		e.Headers = append(e.Headers, transport.Header{Key: h.Key, Value: v})
	}
	return e, nil
}

func decodeTime(raw json.RawMessage) (time.Time, error) {
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, malformed("timestamp: %v", err)
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, malformed("timestamp %q is neither Unix milliseconds nor RFC 3339", s)
		}
		return time.UnixMilli(t.UnixMilli()).UTC(), nil
	}
	ms, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return time.Time{}, malformed("timestamp %.40s is not an integer of Unix milliseconds", raw)
	}
	return time.UnixMilli(ms).UTC(), nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedEntry, fmt.Sprintf(format, args...))
}

// Encoded is an entry with its JSON line (without the newline), encoded
// once by the producer and shared by every backend.
type Encoded struct {
	// Entry is the entry.
	Entry Entry
	// JSON is Entry.AppendJSON(nil).
	JSON []byte
}

// Encode returns e with its JSON.
func Encode(e Entry) Encoded {
	n := 160 + len(e.Service) + len(e.Reason) + len(e.Destination) + base64.StdEncoding.EncodedLen(len(e.Payload))
	if e.Source != nil {
		n += len(e.Source.Topic) + len(e.Source.Token)
	}
	n += base64.StdEncoding.EncodedLen(len(e.Key))
	for _, h := range e.Headers {
		n += 24 + len(h.Key) + base64.StdEncoding.EncodedLen(len(h.Value))
	}
	return Encoded{Entry: e, JSON: e.AppendJSON(make([]byte, 0, n))}
}
