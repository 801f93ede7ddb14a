package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// lookup returns the value at key in the live configuration, or an error
// wrapping ErrNotFound.
func (c *Config) lookup(key string) (any, *state, error) {
	st := c.cur.Load()
	v := st.k.Get(key)
	if v == nil {
		return nil, st, fmt.Errorf("config: %s: %w", key, ErrNotFound)
	}
	return v, st, nil
}

// getterError builds the DecodeError a getter returns for a value it
// cannot convert.
func getterError(st *state, key string, v any, err error) error {
	return &DecodeError{Key: key, Value: showValue(v, IsSensitiveKey(key)), Source: st.source(key), Err: err}
}

// Contains reports whether key is set to a non-null value (a leaf or a
// section) in the live configuration.
func (c *Config) Contains(key string) bool {
	return c.cur.Load().k.Get(key) != nil
}

// String returns the value at key as a string. Numbers and booleans are
// formatted; a list or section is an error. A missing key gives an error
// wrapping ErrNotFound.
func (c *Config) String(key string) (string, error) {
	v, st, err := c.lookup(key)
	if err != nil {
		return "", err
	}
	s, err := toString(v)
	if err != nil {
		return "", getterError(st, key, v, err)
	}
	return s, nil
}

// Int returns the value at key as an int; strings such as "8080" (from
// the environment) are parsed in base 10.
func (c *Config) Int(key string) (int, error) {
	v, st, err := c.lookup(key)
	if err != nil {
		return 0, err
	}
	n, err := toInt64(v)
	if err == nil && (n < math.MinInt || n > math.MaxInt) {
		err = errors.New("out of range for int")
	}
	if err != nil {
		return 0, getterError(st, key, v, err)
	}
	return int(n), nil
}

// Float returns the value at key as a float64.
func (c *Config) Float(key string) (float64, error) {
	v, st, err := c.lookup(key)
	if err != nil {
		return 0, err
	}
	f, err := toFloat64(v)
	if err != nil {
		return 0, getterError(st, key, v, err)
	}
	return f, nil
}

// Bool returns the value at key as a bool. Strings accept true/false,
// 1/0, t/f, yes/no and on/off in any case.
func (c *Config) Bool(key string) (bool, error) {
	v, st, err := c.lookup(key)
	if err != nil {
		return false, err
	}
	b, err := toBool(v)
	if err != nil {
		return false, getterError(st, key, v, err)
	}
	return b, nil
}

// Duration returns the value at key as a duration: Go syntax ("1m30s",
// "250ms", "2h30m") or a bare number, which means seconds ("90", 90, 1.5).
func (c *Config) Duration(key string) (time.Duration, error) {
	v, st, err := c.lookup(key)
	if err != nil {
		return 0, err
	}
	d, err := toDuration(v)
	if err != nil {
		return 0, getterError(st, key, v, err)
	}
	return d, nil
}

// Strings returns the value at key as a list of strings: a YAML list, or
// a comma-separated string (items trimmed, empty items dropped), as an
// environment variable gives.
func (c *Config) Strings(key string) ([]string, error) {
	v, st, err := c.lookup(key)
	if err != nil {
		return nil, err
	}
	l, err := toStrings(v)
	if err != nil {
		return nil, getterError(st, key, v, err)
	}
	return l, nil
}

// The conversions below are shared by the getters and the decode hooks.
// Their errors never quote the value: the caller adds it, redacted when
// sensitive.

func toString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case time.Duration:
		return x.String(), nil
	case fmt.Stringer:
		return x.String(), nil
	}
	if n, ok := asInt64(v); ok {
		return strconv.FormatInt(n, 10), nil
	}
	return "", fmt.Errorf("expected a string, got %s", kindOf(v))
}

// asInt64 converts the integer kinds pflag and YAML produce.
func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint:
		if uint64(x) <= math.MaxInt64 {
			return int64(x), true
		}
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

func toInt64(v any) (int64, error) {
	if n, ok := asInt64(v); ok {
		return n, nil
	}
	switch x := v.(type) {
	case float64:
		return floatToInt(x)
	case float32:
		return floatToInt(float64(x))
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return 0, errors.New("not an integer")
		}
		return n, nil
	}
	return 0, fmt.Errorf("expected an integer, got %s", kindOf(v))
}

func floatToInt(f float64) (int64, error) {
	if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, errors.New("not an integer")
	}
	return int64(f), nil
}

func toFloat64(v any) (float64, error) {
	if n, ok := asInt64(v); ok {
		return float64(n), nil
	}
	switch x := v.(type) {
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, errors.New("not a number")
		}
		return f, nil
	}
	return 0, fmt.Errorf("expected a number, got %s", kindOf(v))
}

func toBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		return parseBool(x)
	}
	if n, ok := asInt64(v); ok && (n == 0 || n == 1) {
		return n == 1, nil
	}
	return false, fmt.Errorf("expected a boolean, got %s", kindOf(v))
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "t", "1", "yes", "y", "on":
		return true, nil
	case "false", "f", "0", "no", "n", "off":
		return false, nil
	}
	return false, errors.New("not a boolean (use true/false, yes/no, on/off or 1/0)")
}

// toDuration accepts Go duration syntax or a bare number of seconds.
func toDuration(v any) (time.Duration, error) {
	switch x := v.(type) {
	case time.Duration:
		return x, nil
	case string:
		return parseDuration(x)
	case float64:
		return secondsToDuration(x)
	case float32:
		return secondsToDuration(float64(x))
	}
	if n, ok := asInt64(v); ok {
		return secondsToDuration(float64(n))
	}
	return 0, fmt.Errorf("expected a duration, got %s", kindOf(v))
}

var errDuration = errors.New("not a duration (use Go syntax such as 1m30s or 250ms, or a number of seconds)")

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errDuration
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return secondsToDuration(float64(n))
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return secondsToDuration(f)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errDuration
	}
	return d, nil
}

func secondsToDuration(sec float64) (time.Duration, error) {
	ns := sec * float64(time.Second)
	if math.IsNaN(ns) || ns >= math.MaxInt64 || ns <= math.MinInt64 {
		return 0, errors.New("duration out of range")
	}
	return time.Duration(ns), nil
}

func toStrings(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return splitList(x), nil
	case []string:
		return append([]string(nil), x...), nil
	case []any:
		out := make([]string, 0, len(x))
		for i, e := range x {
			s, err := toString(e)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("expected a list or a comma-separated string, got %s", kindOf(v))
}

// splitList splits a comma-separated string, trimming items and dropping
// empty ones.
func splitList(s string) []string {
	out := []string{}
	for part := range strings.SplitSeq(s, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// kindOf names a value's shape for error messages.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "a section (mapping)"
	case []any:
		return "a list"
	case float32, float64:
		return "a number"
	}
	if _, ok := asInt64(v); ok {
		return "an integer"
	}
	return fmt.Sprintf("a %T", v)
}
