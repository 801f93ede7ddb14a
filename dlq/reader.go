package dlq

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// DefaultMaxLineBytes is the longest line a Reader accepts.
const DefaultMaxLineBytes = 64 << 20

// LineError is a line a Reader could not decode. Reading can go on with
// the next line. It matches ErrMalformedEntry.
type LineError struct {
	// Line is the 1-based line number.
	Line int
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Unwrap returns the cause.
func (e *LineError) Unwrap() error { return e.Err }

// Is matches ErrMalformedEntry.
func (e *LineError) Is(target error) bool { return target == ErrMalformedEntry }

// Reader reads entries from NDJSON, such as a file backend's file, one per
// line. Blank lines are skipped.
type Reader struct {
	r       *bufio.Reader
	line    int
	maxLine int
	buf     []byte
}

// NewReader returns a Reader of r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), maxLine: DefaultMaxLineBytes}
}

// SetMaxLineBytes sets the longest line accepted (default
// DefaultMaxLineBytes); a longer line is a *LineError and is skipped.
func (r *Reader) SetMaxLineBytes(n int) {
	if n > 0 {
		r.maxLine = n
	}
}

// Next returns the next entry. At the end it returns io.EOF. A line that
// does not decode (such as one torn by a crash) gives a *LineError, and
// the following call goes on with the next line. A read error of the
// underlying reader is returned as is.
func (r *Reader) Next() (Entry, error) {
	for {
		line, tooLong, err := r.readLine()
		if err != nil && len(line) == 0 && !tooLong {
			return Entry{}, err
		}
		r.line++
		if tooLong {
			return Entry{}, &LineError{Line: r.line, Err: fmt.Errorf("%w: line longer than %d bytes", ErrMalformedEntry, r.maxLine)}
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			if err != nil {
				return Entry{}, err
			}
			continue
		}
		e, derr := Decode(line)
		if derr != nil {
			return Entry{}, &LineError{Line: r.line, Err: derr}
		}
		return e, nil
	}
}

// readLine returns the next line without its newline. A line over the
// limit is consumed and reported with tooLong. At the end of input err is
// io.EOF (with the last unterminated line, if any).
func (r *Reader) readLine() (line []byte, tooLong bool, err error) {
	r.buf = r.buf[:0]
	for {
		frag, err := r.r.ReadSlice('\n')
		if !tooLong {
			if len(r.buf)+len(frag) > r.maxLine+1 {
				tooLong = true
				r.buf = r.buf[:0]
			} else {
				r.buf = append(r.buf, frag...)
			}
		}
		switch {
		case err == nil:
			return bytes.TrimSuffix(r.buf, []byte{'\n'}), tooLong, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return r.buf, tooLong, err
		}
	}
}

// ReadFile reads every entry of a file written by the file backend,
// plain or gzipped (by the .gz suffix). It returns the entries it could
// decode and, joined, the errors of the lines it could not (each a
// *LineError) or of the file.
func ReadFile(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var src io.Reader = f
	if strings.HasSuffix(path, gzExt) {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		src = zr
	}
	rd := NewReader(src)
	var out []Entry
	var errs []error
	for {
		e, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var le *LineError
		if errors.As(err, &le) {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		if err != nil {
			return out, errors.Join(append(errs, fmt.Errorf("%s: %w", path, err))...)
		}
		out = append(out, e)
	}
	return out, errors.Join(errs...)
}
