package codec

import (
	"fmt"
)

// ParseOptions configures Parse. The zero value detects the format, allows
// DefaultMaxDepth levels, interns nothing and copies JSON strings.
type ParseOptions struct {
	// Format is the payload format. Auto (the zero value) runs Detect on
	// each payload; an undetermined payload is parsed as JSON.
	Format Format
	// MaxDepth is the deepest nesting of objects and arrays accepted;
	// deeper payloads fail with ErrTooDeep before any recursive decoding
	// starts. 0 means DefaultMaxDepth (64); at most MaxDepthLimit.
	MaxDepth int
	// Interner, when set, makes the top-level object keys of every parsed
	// payload shared strings. Share one across a block or a pipeline. It is
	// optional and pays off for MsgPack, whose keys it reads without
	// allocating; for JSON it costs about 40% of the parse throughput and
	// saves no allocation, because sonic's keys already point into its
	// decode buffer (BENCHMARKS.md has the figures).
	Interner *Interner
	// ZeroCopy lets JSON strings and keys point into the payload instead of
	// a private copy of it, which parses faster. Set it only when the
	// payload bytes are never modified or reused while the Value, or any
	// string taken from it, is in use. MsgPack decoding always copies.
	ZeroCopy bool
}

// Validate checks the options. Parse calls it too; call it at start-up to
// fail early on bad configuration.
func (o ParseOptions) Validate() error {
	if !o.Format.Valid() {
		return fmt.Errorf("codec: %w: ParseOptions.Format is %s: use Auto, JSON or MsgPack", ErrInvalidOptions, o.Format)
	}
	if o.MaxDepth < 0 || o.MaxDepth > MaxDepthLimit {
		return fmt.Errorf("codec: %w: ParseOptions.MaxDepth is %d: use 0 for the default %d, or 1 to %d",
			ErrInvalidOptions, o.MaxDepth, DefaultMaxDepth, MaxDepthLimit)
	}
	return nil
}

func (o ParseOptions) maxDepth() int {
	if o.MaxDepth == 0 {
		return DefaultMaxDepth
	}
	return o.MaxDepth
}

// Parse decodes one payload into a Value.
//
// The format comes from opts.Format, or from Detect when it is Auto. Before
// any recursive decoding, an iterative guard measures the nesting (a byte
// scan for JSON, a header walk for MsgPack), so a deeply nested bomb is an
// ErrTooDeep error for that record, never a stack overflow. JSON is decoded
// with sonic and accepts only whitespace after the value; MsgPack is decoded
// with msgpack and accepts no byte after the value.
//
// Payload errors are *Error values whose Kind is ErrEmpty, ErrSyntax,
// ErrTruncated, ErrTrailingData, ErrTooDeep or ErrUnsupported, with the byte
// offset where it is known. Invalid options wrap ErrInvalidOptions. Parse
// never panics on input and is safe for concurrent use.
//
// The Value keeps data as its original bytes (Value.Raw, and Value.Bytes
// while unmodified), so data must not be modified while the Value is in use.
func Parse(data []byte, opts ParseOptions) (*Value, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	f := opts.Format
	if f == Auto {
		f = Detect(data)
		if f == Auto {
			f = JSON
		}
	}
	if f == MsgPack {
		return parseMsgPack(data, opts)
	}
	return parseJSON(data, opts)
}
