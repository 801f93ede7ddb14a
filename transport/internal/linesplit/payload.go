package linesplit

import (
	"bytes"
	"fmt"
)

// Unframable says why payload p cannot be written as one NDJSON line that
// a Framer with limit maxLine reads back byte for byte, or returns "" when
// it can. section names the configuration section of the max_line_bytes
// key in the reason. The reasons, in order of precedence: p is empty or
// whitespace only (readers skip it), longer than maxLine (readers
// dead-letter it), contains '\n' (it would be two lines), or ends with
// '\r' (readers strip it).
func Unframable(p []byte, maxLine int, section string) string {
	switch {
	case IsBlank(p):
		return "it is empty or whitespace only, which readers skip"
	case len(p) > maxLine:
		return fmt.Sprintf("%d bytes is over %s.max_line_bytes %d", len(p), section, maxLine)
	case bytes.IndexByte(p, '\n') >= 0:
		return "it contains a newline; encode the record as single-line JSON"
	case p[len(p)-1] == '\r':
		return "it ends with a carriage return, which readers strip"
	default:
		return ""
	}
}
