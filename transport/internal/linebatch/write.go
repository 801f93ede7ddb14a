package linebatch

import (
	"bufio"
	"errors"
	"fmt"

	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/internal/linesplit"
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

// ErrUnframable is matched by the error of a record a line sender refused
// because its payload cannot be one NDJSON line. The file and pipe
// transports export it as their own ErrUnframable.
var ErrUnframable = errors.New("payload cannot be framed as one NDJSON line")

// PayloadCheck returns the check WriteLines takes for a sender of the
// transport transportName whose lines are at most maxLine bytes (config
// section section): a fatal transport.ErrSend error matching ErrUnframable
// that says why a payload cannot be one NDJSON line, or nil.
func PayloadCheck(transportName, section string, maxLine int) func(payload []byte) error {
	return func(p []byte) error {
		why := linesplit.Unframable(p, maxLine, section)
		if why == "" {
			return nil
		}
		return transport.NewError(transport.ErrSend, transportName, "send", fmt.Errorf("%w: %s", ErrUnframable, why))
	}
}

// SenderState is whether a line sender was closed or broken by an I/O
// failure. The sender guards it with its own mutex.
type SenderState struct {
	// Closed is set by Close.
	Closed bool
	// Broken is the write, flush or fsync failure that stopped the sender.
	Broken error
}

// Usable returns a transport.ErrClosed error after Close, the failure that
// broke the sender as a transport.ErrSend error, or nil; transportName and
// op name the transport and the operation in the error.
func (s *SenderState) Usable(transportName, op string) error {
	if s.Closed {
		return transport.NewError(transport.ErrClosed, transportName, op, nil)
	}
	if s.Broken != nil {
		return transport.NewError(transport.ErrSend, transportName, op, s.Broken)
	}
	return nil
}
