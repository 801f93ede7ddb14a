// Package codec parses record payloads in JSON and MessagePack behind one
// value type, and guards the parsers against hostile input.
//
// Start with Parse. The zero ParseOptions detects each payload's format,
// accepts 64 levels of nesting and copies nothing it does not need:
//
//	v, err := codec.Parse(record.Payload, codec.ParseOptions{})
//	if err != nil {
//		// a per-record error: dead-letter the record with err.Error()
//	}
//	if lvl, ok := v.Field("level").Str(); ok && lvl == "error" {
//		_ = v.Set("alert", true)
//	}
//	out, err := v.Bytes() // the original bytes when nothing was changed
//
// # Formats and detection
//
// Format is Auto, JSON or MsgPack; ParseFormat reads "auto|json|msgpack"
// from configuration. Detect tells a payload's format from its first bytes
// (a MsgPack map or array header, or '{' / '[' after JSON whitespace) and
// returns Auto when it cannot tell. A Detector follows a stream: it locks to
// the first format it sees, flags payloads of the other format so the caller
// dead-letters them, and relocks after DefaultRelockAfter consecutive
// mismatches.
//
// # Guards
//
// Before any recursive decoding an iterative pass measures the nesting (a
// byte scan that follows JSON strings and escapes, a walk over every
// MessagePack header), so a payload nested thousands of levels deep fails
// with ErrTooDeep instead of exhausting the stack. MessagePack with bytes
// after the value fails with ErrTrailingData, as does JSON with anything but
// whitespace after the value. All payload errors are *Error values with a
// sentinel Kind and a byte offset, and their messages never quote the
// payload. Parse never panics on input.
//
// # Values
//
// Value.Field reads a top-level field the same way for both formats and
// returns its Kind (string, int, float, bool, null, other or missing) with
// typed accessors. Set and Delete change top-level fields; Bytes then
// re-encodes in the value's own format (JSON with sonic, MessagePack with
// msgpack). There is deliberately no conversion between formats, and an
// unmodified value forwards its original bytes untouched.
//
// # Interning
//
// An Interner, shared across a block through ParseOptions.Interner, makes
// the repeated top-level keys of many records share one string. It is
// bounded and safe for concurrent use, and optional: it speeds up MsgPack
// (keys are read without allocating) and slows JSON down, as BENCHMARKS.md
// in this directory records.
//
// # Performance
//
// The guards run an order of magnitude faster than the parsers, so Parse
// runs at 85–95% of bare sonic on JSON log lines (about three times
// encoding/json) and at about 90% of bare msgpack on MessagePack.
package codec
