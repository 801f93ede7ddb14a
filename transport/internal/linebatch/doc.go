// Package linebatch holds the batch logic shared by the NDJSON transports
// (file and pipe) on top of linesplit: a Builder that turns framed lines
// into one transport.Batch under transport.Limits, copying payloads out of
// the reused framing buffer into arena blocks, and WriteLines, which
// writes records as lines and lists the ones that cannot be framed in a
// *transport.BatchError.
//
// Receiving:
//
//	b := linebatch.New(limits, hint)
//	for !b.Full() {
//		fr := framer.Next()
//		if fr.Kind == linesplit.None {
//			break
//		}
//		switch fr.Kind {
//		case linesplit.Line:
//			b.AddLine(fr.Line, tok)
//		case linesplit.Oversize:
//			b.AddDeadLetter(fr.Line, linebatch.OversizeReason(fr, section, maxLine), tok)
//		}
//	}
//	batch, hint := b.Batch(time.Now())
//
// Sending:
//
//	n, be, err := linebatch.WriteLines(w, records, check)
package linebatch
