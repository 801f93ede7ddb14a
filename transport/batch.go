package transport

// Batch is the unit the engine moves: records, the commit tokens of the
// input that produced them, and inline dead letters.
//
// Tokens are the input acknowledgements and are independent of the
// records: a batch whose records were all filtered out still carries its
// tokens and must still be committed, or the source stalls.
type Batch struct {
	Records     []Record
	Tokens      []Token
	DeadLetters []DeadLetter
}

// NewBatch returns a batch of records with their input tokens.
func NewBatch(records []Record, tokens []Token) Batch {
	return Batch{Records: records, Tokens: tokens}
}

// FromRecords returns a batch with records and no tokens. A process step
// that builds its output this way drops the input tokens; prefer
// MapRecords, which keeps them.
func FromRecords(records ...Record) Batch { return Batch{Records: records} }

// Len returns the number of records.
func (b *Batch) Len() int { return len(b.Records) }

// IsEmpty reports a batch with no records, no tokens and no dead letters:
// there is nothing to process and nothing to commit.
func (b *Batch) IsEmpty() bool {
	return len(b.Records) == 0 && len(b.Tokens) == 0 && len(b.DeadLetters) == 0
}

// PayloadBytes returns the sum of the record payload sizes.
func (b *Batch) PayloadBytes() int64 { return PayloadBytes(b.Records) }

// PayloadBytes returns the sum of the payload sizes of records.
func PayloadBytes(records []Record) int64 {
	var n int64
	for i := range records {
		n += int64(len(records[i].Payload))
	}
	return n
}

// MapRecords returns a batch whose records are f applied to each record in
// order (f may return zero, one or many records), keeping the tokens and
// the dead letters. This is the sanctioned way to fan out or filter.
func (b Batch) MapRecords(f func(Record) []Record) Batch {
	out := make([]Record, 0, len(b.Records))
	for _, r := range b.Records {
		out = append(out, f(r)...)
	}
	return Batch{Records: out, Tokens: b.Tokens, DeadLetters: b.DeadLetters}
}

// WithDeadLetters returns the batch with dl appended to its dead letters.
func (b Batch) WithDeadLetters(dl ...DeadLetter) Batch {
	b.DeadLetters = append(b.DeadLetters, dl...)
	return b
}
