package linebatch

import (
	"bufio"
	"errors"

	"github.com/keel-go/keel/transport"
)

// Written counts what WriteLines wrote.
type Written struct {
	// Lines is the number of records written.
	Lines int
	// Bytes is the bytes written, terminators included.
	Bytes int64
}

// WriteLines writes the payload of each record and a '\n' to w, in order.
// check says why a payload cannot be written as one line (nil when it
// can); such a record is skipped and listed, with check's error, in the
// returned *transport.BatchError (nil when none was skipped), and the
// others are written. w is not flushed. A write error is returned at once
// as it is, with the counts of what was written before it.
func WriteLines(w *bufio.Writer, records []transport.Record, check func(payload []byte) error) (Written, *transport.BatchError, error) {
	var (
		n  Written
		be *transport.BatchError
	)
	for i := range records {
		p := records[i].Payload
		if err := check(p); err != nil {
			if be == nil {
				be = &transport.BatchError{}
			}
			be.Failed = append(be.Failed, transport.FailedRecord{Index: i, Err: err})
			continue
		}
		if _, err := w.Write(p); err != nil {
			return n, be, err
		}
		if err := w.WriteByte('\n'); err != nil {
			return n, be, err
		}
		n.Lines++
		n.Bytes += int64(len(p)) + 1
	}
	return n, be, nil
}

// SingleError turns the result of sending a batch of one record into the
// result of sending that record: the record's own error when err is a
// *transport.BatchError listing one failure, err otherwise.
func SingleError(err error) error {
	var be *transport.BatchError
	if errors.As(err, &be) && len(be.Failed) == 1 {
		return be.Failed[0].Err
	}
	return err
}
