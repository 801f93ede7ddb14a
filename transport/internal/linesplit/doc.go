// Package linesplit frames a byte stream into NDJSON lines with bounded
// memory, for the transports that read and write newline-delimited JSON
// (the file and pipe transports).
//
// A Framer takes input through Space and Wrote and hands out complete lines
// through Next; Finish frames an unterminated last line when the stream
// ends. A line ends at '\n', a trailing '\r' is stripped, lines of ASCII
// whitespace are reported as Blank, and a line longer than the limit is
// never held whole: it is reported as Oversize with a short prefix to
// dead-letter. Unframable is the sender-side mirror: it says why a payload
// could not be read back as exactly one line.
//
//	fr := linesplit.New(maxLine)
//	for {
//		n, err := r.Read(fr.Space())
//		fr.Wrote(n)
//		for f := fr.Next(); f.Kind != linesplit.None; f = fr.Next() {
//			// use f.Line (valid until the next Space) and f.End
//		}
//		if err != nil {
//			break
//		}
//	}
package linesplit
