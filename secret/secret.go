package secret

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
)

// Redacted is what every printing path shows instead of a secret value.
const Redacted = "[REDACTED]"

// String is a secret string. The zero value is an empty secret. It is
// immutable and safe to copy and to share between goroutines.
//
// The value sits behind a pointer, so that a String in an unexported
// struct field, where fmt cannot call its methods and prints the fields by
// reflection, shows a pointer address and never the value. As a
// consequence == compares identity, not value: two Strings made by
// separate New calls from the same text are not ==, and neither are two
// structs holding them. Compare secrets with Equal; a String copied from
// another is == to it.
type String struct {
	p *string
}

// New wraps a value as a secret. New("") returns the zero String.
func New(v string) String {
	if v == "" {
		return String{}
	}
	return String{p: &v}
}

// Expose returns the real value. Call it only where the value is used
// (a dial, a header), never to log or print.
func (s String) Expose() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// IsZero reports whether the secret is empty.
func (s String) IsZero() bool { return s.p == nil || *s.p == "" }

// Len returns the length of the value, which is safe to log.
func (s String) Len() int { return len(s.Expose()) }

// Equal compares two secrets by value.
func (s String) Equal(o String) bool { return s.Expose() == o.Expose() }

// String returns [REDACTED].
func (s String) String() string { return Redacted }

// GoString returns [REDACTED] for %#v.
func (s String) GoString() string { return "secret.String(" + Redacted + ")" }

// Format implements fmt.Formatter so that every verb prints [REDACTED].
func (s String) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		_, _ = f.Write([]byte(strconv.Quote(Redacted)))
	case 'v':
		if f.Flag('#') {
			_, _ = f.Write([]byte(s.GoString()))
			return
		}
		_, _ = f.Write([]byte(Redacted))
	default:
		_, _ = f.Write([]byte(Redacted))
	}
}

// LogValue implements slog.LogValuer.
func (s String) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON writes "[REDACTED]".
func (s String) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// UnmarshalJSON reads the real value from a JSON string.
func (s *String) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = String{}
		return nil
	}
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("secret: value must be a JSON string")
	}
	*s = New(v)
	return nil
}

// MarshalText writes [REDACTED]. It also covers encoding/xml and any
// encoder that honours encoding.TextMarshaler.
func (s String) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// UnmarshalText reads the real value. Config decoders use it.
func (s *String) UnmarshalText(b []byte) error {
	*s = New(string(b))
	return nil
}

// MarshalYAML writes [REDACTED] (gopkg.in/yaml and go.yaml.in/yaml).
func (s String) MarshalYAML() (any, error) { return Redacted, nil }

// UnmarshalYAML reads the real value (yaml v2 style callback, also
// accepted by yaml v3).
func (s *String) UnmarshalYAML(unmarshal func(any) error) error {
	var v string
	if err := unmarshal(&v); err != nil {
		return fmt.Errorf("secret: value must be a string")
	}
	*s = New(v)
	return nil
}
